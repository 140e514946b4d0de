// One vCPU in a worker thread: the engine test guest, with blocking faults through BlockingPager.
import { parentPort, workerData } from "node:worker_threads";
import { HC } from "../../guests/enginetest/layout.ts";
import { BlockingPager, type PagerMessage } from "../../src/engine/blocking.ts";
import { bootEngineTest } from "./engine-guest.ts";

export interface DsmWorkerData {
  scenario: string;
  mailbox: SharedArrayBuffer;
  /** Pages this vCPU does not hold at start. */
  notHeld: number[];
  /** Int32 [arrived, vcpus]: LOCK_START waits until every vCPU arrived, so the loops overlap. */
  barrier: SharedArrayBuffer;
  iterations: number;
}
export type DsmWorkerMessage = { type: "pager"; msg: PagerMessage } | { type: "done"; failures: number; output: string; faults: number };

const port = parentPort!;
const data = workerData as DsmWorkerData;
let pager!: BlockingPager;
const run = await bootEngineTest(
  data.scenario,
  (cmd) => {
    if (cmd !== HC.LOCK_START) return 0;
    // No shared page is touched before this point, so waiting here cannot starve the others.
    const b = new Int32Array(data.barrier);
    Atomics.add(b, 0, 1);
    Atomics.notify(b, 0);
    for (let v = Atomics.load(b, 0); v < b[1]; v = Atomics.load(b, 0)) Atomics.wait(b, 0, v);
    return data.iterations;
  },
  (f) => pager.handler(f),
  (vcpu) => {
    pager = new BlockingPager(vcpu, data.mailbox, (msg) => port.postMessage({ type: "pager", msg } satisfies DsmWorkerMessage));
    for (const p of data.notHeld) vcpu.setPageAccess(p, "none");
  },
);
// Requests that arrive while the guest is not inside a fault are served here, between v86's slices.
port.on("message", (m: string) => {
  if (m === "poke") pager.poll();
  if (m === "exit") void run.vcpu.destroy().then(() => process.exit(0));
});
const failures = await run.done;
port.postMessage({ type: "done", failures, output: run.output(), faults: run.vcpu.stats.faults } satisfies DsmWorkerMessage);
