// Linux on the extended engine while a simulated remote owner keeps taking random pages away
// (to no-access or read-only) and hands them back, unchanged, when the guest faults. Any path that
// used a page without faulting it in would read the zeros the test leaves behind, or write into
// a page the node no longer holds; the boot must reach a working shell regardless.
import { describe, expect, it } from "vitest";
import { PROMPT_RE } from "../../harness/nodejs/serial-vm.ts";
import type { Vcpu } from "../../src/engine/vcpu.ts";
import { startLinuxOnEngine } from "../../harness/nodejs/engine-linux.ts";

describe("engine under page churn", () => {
  it("boots Linux to a working shell while pages are revoked at random points", { timeout: 900_000 }, async () => {
    let rng = Number(process.env.ENGINE_SEED ?? 777) >>> 0;
    const random = () => {
      rng = (rng * 1664525 + 1013904223) >>> 0;
      return rng / 4294967296;
    };
    let vcpu!: Vcpu;
    const away = new Map<number, Uint8Array>();
    const pageCount = () => vcpu.pageCount;
    const take = () => {
      const p = Math.floor(random() * pageCount());
      if (p >= 0xa0 && p < 0xc0) return;
      const state = vcpu.pageAccess(p);
      if (state === "none") return;
      const to = state === "write" && random() < 0.5 ? "read" : "none";
      const bytes = vcpu.revoke(p, to);
      if (to === "none") {
        away.set(p, bytes);
        // Leave garbage behind: a path that skips the fault reads it instead of the real bytes.
        vcpu.writePage(p, new Uint8Array(4096).fill(0xcc));
      }
    };
    let faultsServedWithRevocations = 0;
    const vm = await startLinuxOnEngine({
      onFault: (f) => {
        // Serve "remote requests" while this fault waits, as a blocked vCPU must.
        if (random() < 0.3) {
          take();
          faultsServedWithRevocations++;
        }
        const bytes = away.get(f.page);
        away.delete(f.page);
        return { access: f.access === "write" || random() < 0.5 ? "write" : "read", bytes };
      },
      setup: (v) => (vcpu = v),
    });
    const timer = setInterval(() => {
      for (let i = 0; i < 20; i++) take();
    }, 2);
    try {
      await vm.waitFor(PROMPT_RE, 600_000);
      const mark = vm.output().length;
      vm.send("echo $((6*7)); ls /\n");
      await vm.waitFor(/\n42\r?\n[\s\S]*bin/, 120_000, mark);
    } finally {
      clearInterval(timer);
      await vm.destroy();
    }
    const s = vcpu.stats;
    console.log(`churn: ${JSON.stringify(s)}, revocations inside faults ${faultsServedWithRevocations}`);
    expect(s.revocations).toBeGreaterThan(1000);
    expect(s.faultsByCause.tlb).toBeGreaterThan(100);
    expect(s.faultsByCause.physical).toBeGreaterThan(0);
    expect(faultsServedWithRevocations).toBeGreaterThan(10);
  });
});
