// Worker side of worker.test.ts: a vCPU whose IOAPIC and PIC live on "node 0" (the main
// thread). Routed reads block on a SharedArrayBuffer until the main thread answers; writes are
// posted (kept in order by the port), as GiantVM does.
import { parentPort, workerData } from "node:worker_threads";
import { bootInterruptsGuest } from "../../../harness/nodejs/interrupts-guest.ts";

const { sab } = workerData.data as { sab: SharedArrayBuffer };
const cell = new Int32Array(sab); // [0] 0 = idle, 1 = read requested, 2 = answered; [1] the value
const port = parentPort!;

function blockingRead(req: { kind: "mmio" | "pio"; address: number; size: number }): number {
  Atomics.store(cell, 0, 1);
  port.postMessage({ type: "read", ...req });
  while (Atomics.load(cell, 0) === 1) Atomics.wait(cell, 0, 1);
  Atomics.store(cell, 0, 0);
  return cell[1] >>> 0;
}

const g = await bootInterruptsGuest("route", { apicId: 1, role: "bsp", autostart: false });
let blockedReads = 0;
g.vi.routeIoapic({
  read: (address, size) => (blockedReads++, blockingRead({ kind: "mmio", address, size })),
  write: (address, size, value) => port.postMessage({ type: "write", kind: "mmio", address, size, value }),
});
g.vi.routePic({
  read8: (p) => (blockedReads++, blockingRead({ kind: "pio", address: p, size: 1 })),
  write8: (p, value) => port.postMessage({ type: "write", kind: "pio", address: p, size: 1, value }),
});
await g.vi.vcpu.emulator.run();
const failures = await g.done;
port.postMessage({ type: "done", failures, output: g.output(), blockedReads });
await g.vi.vcpu.destroy();
