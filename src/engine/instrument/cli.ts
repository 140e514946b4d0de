// `npx tsx src/engine/instrument/cli.ts` builds (or confirms) the instrumented v86.wasm.
import { ensureInstrumentedWasm } from "./ensure.ts";

try {
  const out = await ensureInstrumentedWasm({ log: (m) => console.error(m) });
  console.log(out);
} catch (err) {
  console.error(`instrumentation failed: ${(err as Error).message}`);
  process.exit(1);
}
