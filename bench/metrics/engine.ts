// The extended vCPU engine against stock v86 (same run), and the cost of a locally handled fault.
import { BENCH_ITERATIONS, HC, NOISE_PAGE } from "../../guests/enginetest/layout.ts";
import type { Vcpu } from "../../src/engine/vcpu.ts";
import { bootEngineTest } from "../../harness/nodejs/engine-guest.ts";
import { measureEngineBootSeconds } from "../../harness/nodejs/engine-linux.ts";
import { measureBootSeconds } from "../../harness/nodejs/serial-vm.ts";
import { runSharedCounter } from "../../harness/nodejs/shared-counter.ts";
import type { BenchModule, Metrics } from "../types.ts";

/** Seconds the guest's faultbench loop took, and the faults taken in it. */
async function faultLoop(revoke: boolean): Promise<{ seconds: number; faults: number }> {
  const N = NOISE_PAGE >>> 12;
  let vcpu!: Vcpu;
  let start = 0;
  let seconds = 0;
  let faultsAtStart = 0;
  let faults = 0;
  const run = await bootEngineTest(
    "faultbench",
    (cmd) => {
      if (cmd === HC.BENCH_START) {
        if (revoke) vcpu.revoke(N, "none");
        faultsAtStart = vcpu.stats.faults;
        start = performance.now();
      } else if (cmd === HC.BENCH_STOP) {
        seconds = (performance.now() - start) / 1000;
        faults = vcpu.stats.faults - faultsAtStart;
      }
      return 0;
    },
    // The page comes back from the local copy; the other noise page goes, so the next write faults.
    (f) => {
      if (revoke && (f.page === N || f.page === N + 1)) vcpu.revoke(f.page === N ? N + 1 : N, "none");
      return { access: "write" };
    },
  );
  vcpu = run.vcpu;
  try {
    const failures = await run.done;
    if (failures !== 0) throw new Error(`faultbench guest reported ${failures} failure(s)`);
  } finally {
    await vcpu.destroy();
  }
  return { seconds, faults };
}

const engine: BenchModule = {
  prefixes: ["engine."],
  async run(ctx) {
    const metrics: Metrics = {};
    if (ctx.wants("engine.boot_ratio")) {
      const stock = await ctx.stockBootSeconds();
      ctx.log("engine: Linux boot with every page read-write");
      const { seconds } = await measureEngineBootSeconds();
      metrics["engine.boot_ratio"] = { value: seconds / stock, unit: "ratio", note: `extended ${seconds.toFixed(1)} s / stock ${stock.toFixed(1)} s` };
    }
    if (ctx.wants("engine.boot_cpu_ratio")) {
      // Wall time on this shared 2-core machine swings by +-30% between runs; the process's CPU
      // time for the same boot is far steadier. Two alternating rounds, ratio of the sums.
      const cpu = () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      };
      let stockCpu = 0;
      let engineCpu = 0;
      for (let round = 0; round < 2; round++) {
        ctx.log(`engine: CPU time of stock and extended boots, round ${round + 1} of 2`);
        let c = cpu();
        await measureBootSeconds();
        stockCpu += cpu() - c;
        c = cpu();
        await measureEngineBootSeconds();
        engineCpu += cpu() - c;
      }
      metrics["engine.boot_cpu_ratio"] = {
        value: engineCpu / stockCpu,
        unit: "ratio",
        note: `process CPU seconds to the shell prompt, extended ${engineCpu.toFixed(1)} / stock ${stockCpu.toFixed(1)} over 2 alternating rounds`,
      };
    }
    if (ctx.wants("engine.fault_us")) {
      ctx.log("engine: guest write loop, with and without a fault per iteration");
      const base = await faultLoop(false);
      const faulting = await faultLoop(true);
      if (faulting.faults < BENCH_ITERATIONS / 2) throw new Error(`faultbench took only ${faulting.faults} faults`);
      const us = ((faulting.seconds - base.seconds) / faulting.faults) * 1e6;
      metrics["engine.fault_us"] = {
        value: us,
        unit: "µs",
        note: `${faulting.faults} faults, each a TLB-fill fault granted from the local copy plus one revocation (TLB flush, code drop)`,
      };
    }
    if (ctx.wants("engine.worker_transfer_us")) {
      ctx.log("engine: two vCPUs in workers sharing a counter page through blocking faults");
      const iterations = 100_000;
      const r = await runSharedCounter(2, iterations);
      const want = 2 * iterations;
      if (r.counts.xadd !== want || r.counts.cmpxchg !== want || r.counts.inc !== want) {
        throw new Error(`shared counter is ${JSON.stringify(r.counts)}, expected ${want} each`);
      }
      metrics["engine.worker_transfer_us"] = {
        value: (r.seconds / r.transfers) * 1e6,
        unit: "µs",
        note: `wall time per page transfer between 2 worker vCPUs (Atomics.wait + postMessage via the main thread), guest work included; ${r.transfers} transfers`,
      };
    }
    for (const fraction of [0.25, 0.5]) {
      const name = `engine.ro_boot_ratio.${Math.round(fraction * 100)}`;
      if (!ctx.wants(name)) continue;
      const stock = await ctx.stockBootSeconds();
      ctx.log(`engine: Linux boot with ${fraction * 100}% of pages read-only at start`);
      let rng = 42;
      const { seconds, vcpu } = await measureEngineBootSeconds({
        setup: (v) => v.setAllPages("read", () => ((rng = (rng * 1664525 + 1013904223) >>> 0) / 4294967296) < fraction),
        onFault: () => ({ access: "write" }),
      });
      metrics[name] = {
        value: seconds / stock,
        unit: "ratio",
        note: `${vcpu.stats.faults} write faults; extended ${seconds.toFixed(1)} s / stock ${stock.toFixed(1)} s`,
      };
    }
    return metrics;
  },
};
export default engine;
