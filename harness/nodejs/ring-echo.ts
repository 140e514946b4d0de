// Two worker threads ping-pong frames over LocalLinks (ring-echo-worker.ts): the raw round trip
// of the shared-memory links, with the echoing node blocked on its doorbell or woken from its
// event loop. Used by the links test and by the smp benchmark (as the reference for IPI latency).
import { planLocalLinks } from "../../src/runtime/links/local-links.ts";
import { startTsWorker } from "../../src/runtime/nodejs/ts-worker.ts";
import type { EchoData, EchoReport } from "./ring-echo-worker.ts";

export async function ringEcho(opts: Omit<EchoData, "plan">): Promise<EchoReport> {
  const plan = planLocalLinks(2);
  const workers = [0, 1].map((self) => startTsWorker(new URL("./ring-echo-worker.ts", import.meta.url), { ...opts, plan: { ...plan, self } } satisfies EchoData));
  try {
    return await new Promise<EchoReport>((resolve, reject) => {
      workers[0]!.once("message", resolve);
      for (const w of workers) w.once("error", reject);
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
