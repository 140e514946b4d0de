// The instrumentation pass on the pinned v86.wasm: it finds exactly the sites it expects, emits a
// module with the engine's imports and exports, and refuses a binary it does not know.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { EXPORT_GET_MAP_BASE, EXPORT_QUIET, EXPORT_SET_MAP_BASE, IMPORT_TLB_FAULT } from "../../../src/engine/abi.ts";
import { ensureInstrumentedWasm, STOCK_WASM } from "../../../src/engine/instrument/ensure.ts";
import { EXPECTED } from "../../../src/engine/instrument/expected.ts";
import { InstrumentShapeError, instrumentV86Wasm } from "../../../src/engine/instrument/pass.ts";
import { JIT_LOOP_BOUND } from "../../../src/engine/instrument/jit-loop-pass.ts";

describe("instrumentation pass", () => {
  it("rewrites the expected sites of the pinned binary and adds the engine's interface", { timeout: 120_000 }, async () => {
    const { output, report } = instrumentV86Wasm(fs.readFileSync(STOCK_WASM));
    expect(report.genericSites).toBe(EXPECTED.genericSites);
    expect(report.pageWalkSites).toBe(EXPECTED.pageWalkSites);
    expect(report.inverseSites).toEqual(EXPECTED.inverseSites);
    // Both loop-safety checks of the JIT now bound compiled loops by JIT_LOOP_BOUND (jit-loop-pass.ts).
    expect(report.jitLoop).toEqual({ sites: 2, bound: JIT_LOOP_BOUND });
    const mod = await WebAssembly.compile(output as BufferSource);
    const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}:${i.kind}`);
    const exports = WebAssembly.Module.exports(mod).map((e) => `${e.name}:${e.kind}`);
    expect(imports).toContain(`env.${IMPORT_TLB_FAULT}:function`);
    expect(exports).toEqual(expect.arrayContaining([`${EXPORT_SET_MAP_BASE}:function`, `${EXPORT_GET_MAP_BASE}:function`, `${EXPORT_QUIET}:global`]));
    // Everything stock v86 exports is still there.
    const stock = WebAssembly.Module.exports(await WebAssembly.compile(fs.readFileSync(STOCK_WASM)));
    expect(exports).toEqual(expect.arrayContaining(stock.map((e) => `${e.name}:${e.kind}`)));
  });

  it("refuses a binary whose hash differs, naming both hashes", () => {
    const bytes = new Uint8Array(fs.readFileSync(STOCK_WASM));
    bytes[bytes.length - 1] ^= 1;
    expect(() => instrumentV86Wasm(bytes)).toThrow(InstrumentShapeError);
    expect(() => instrumentV86Wasm(bytes)).toThrow(new RegExp(`expected ${EXPECTED.inputSha256}`));
  });

  it("caches its output and rebuilds it when the cached file was damaged", { timeout: 120_000 }, async () => {
    const dir = fs.mkdtempSync("/tmp/gw-instrument-");
    try {
      const first = await ensureInstrumentedWasm({ cacheDir: dir });
      const stat = fs.statSync(first);
      expect(await ensureInstrumentedWasm({ cacheDir: dir })).toBe(first);
      expect(fs.statSync(first).mtimeMs).toBe(stat.mtimeMs); // served from the cache
      fs.writeFileSync(first, "damaged");
      const again = await ensureInstrumentedWasm({ cacheDir: dir });
      expect(fs.readFileSync(again).length).toBe(stat.size);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
