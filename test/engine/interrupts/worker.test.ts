// Routing across threads: a vCPU in a worker_thread reaches node 0's in-wasm IOAPIC and PIC (on the
// main thread) through handlers that block until the answer comes.
import { describe, expect, it } from "vitest";
import { MEM } from "../../../src/engine/interrupts/abi.ts";
import { startTsWorker } from "../../../src/runtime/nodejs/ts-worker.ts";
import { bootInterruptsGuest } from "../../../harness/nodejs/interrupts-guest.ts";

type Msg =
  | { type: "read"; kind: "mmio" | "pio"; address: number; size: number }
  | { type: "write"; kind: "mmio" | "pio"; address: number; size: number; value: number }
  | { type: "done"; failures: number; output: string; blockedReads: number };

describe("routed devices across threads", () => {
  it("a remote vCPU's IOAPIC/PIC reads block until node 0 answers; its writes land in node 0's devices", { timeout: 120_000 }, async () => {
    const node0 = await bootInterruptsGuest("apicid", { apicId: 0, role: "bsp", autostart: false });
    const sab = new SharedArrayBuffer(8);
    const cell = new Int32Array(sab);
    const worker = startTsWorker(new URL("./worker.ts", import.meta.url), { sab });
    try {
      const done = await new Promise<Extract<Msg, { type: "done" }>>((resolve, reject) => {
        worker.on("error", reject);
        worker.on("message", (m: Msg) => {
          const d = node0.vi.devices;
          if (m.type === "write") {
            if (m.kind === "mmio") d.write(m.address, m.size, m.value);
            else d.write8(m.address, m.value);
          } else if (m.type === "read") {
            // Answer a little later, so the worker really waits.
            setTimeout(() => {
              cell[1] = m.kind === "mmio" ? d.read(m.address, m.size) : d.read8(m.address);
              Atomics.store(cell, 0, 2);
              Atomics.notify(cell, 0);
            }, 5);
          } else resolve(m);
        });
      });
      expect(done.failures, done.output).toBe(0);
      expect(done.blockedReads).toBe(2);
      expect(done.output).toContain("routed.ioapic.version=0x00170011");
      expect(done.output).toContain("routed.pic.imr=0x000000ff");
      expect(new DataView(node0.vi.vcpu.wasm.memory.buffer).getUint32(MEM.ioapic + 5 * 4, true)).toBe(0x0234);
      expect(node0.vi.devices.read8(0xa1)).toBe(0x77);
    } finally {
      await worker.terminate();
      await node0.vi.vcpu.destroy();
    }
  });
});
