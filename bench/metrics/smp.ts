// Many-to-one on one machine, in Node worker_threads: Linux with N vCPUs in N workers (our
// firmware, the DSM, forwarded interrupts and I/O) against stock v86 with one CPU; and the DSM
// fault path alone: Linux on one vCPU whose every page comes from another worker.

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/platform/firmware/bios-build.ts";
import { startCluster } from "../../src/platform/node/cluster.ts";
import type { BenchModule, Metrics } from "../types.ts";

const smp: BenchModule = {
  prefixes: ["smp."],
  async run(ctx) {
    const metrics: Metrics = {};
    const g = ensureGuestImages();
    const wasmPath = await ensureInstrumentedWasm();
    for (const n of [2, 4]) {
      if (!ctx.wants(`smp.boot_ratio.${n}`) && !ctx.wants(`smp.dsm_faults.${n}`)) continue;
      const stock = await ctx.stockBootSeconds();
      ctx.log(`Linux with ${n} vCPUs in ${n} workers`);
      const start = performance.now();
      const cluster = startCluster({
        wasmPath,
        guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
        nodes: Array.from({ length: n }, (_, i) => ({ vcpu: i })),
        deviceNode: 0,
      });
      try {
        await cluster.waitFor(/giantweb:\/root# /, 1_800_000);
        const seconds = (performance.now() - start) / 1000;
        const stats = await Promise.all(Array.from({ length: n }, (_, i) => cluster.stats(i)));
        const sum = (f: (s: Record<string, any>) => number) => stats.reduce((a, s) => a + f(s), 0);
        metrics[`smp.boot_s.${n}`] = { value: seconds, unit: "s", note: `${n} vCPUs in ${n} worker threads, start to shell prompt` };
        metrics[`smp.boot_ratio.${n}`] = { value: seconds / stock, unit: "ratio", note: `${n}-vCPU boot / stock v86 one-CPU boot, same run` };
        metrics[`smp.dsm_faults.${n}`] = { value: sum((s) => s.agent.faults), unit: "count", note: "DSM faults on all nodes during the boot" };
        metrics[`smp.pages_moved.${n}`] = { value: sum((s) => s.dsm.pagesSentBytes), unit: "count", note: "pages sent with their bytes during the boot" };
        metrics[`smp.invalidations.${n}`] = { value: sum((s) => s.dsm.invalidationsSent), unit: "count", note: "invalidations during the boot" };
        metrics[`smp.ipis.${n}`] = { value: sum((s) => s.router?.ipisSent ?? 0), unit: "count", note: "IPIs forwarded between workers during the boot" };
      } finally {
        await cluster.stop();
      }
    }
    if (!ctx.wants("smp.remote_memory") && !ctx.wants("smp.fault_us")) return metrics;
    const stock = await ctx.stockBootSeconds();
    ctx.log("Linux on a vCPU whose RAM is owned by another worker");
    const start = performance.now();
    const cluster = startCluster({
      wasmPath,
      guest: { kind: "linux", bios: g.bios, vgaBios: g.vgaBios, bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
      nodes: [{ vcpu: null }, { vcpu: 0 }],
      deviceNode: 1,
    });
    try {
      await cluster.waitFor(/giantweb:\/root# /, 600_000);
      const seconds = (performance.now() - start) / 1000;
      const s = await cluster.stats(1);
      metrics["smp.remote_memory.boot_s"] = { value: seconds, unit: "s", note: "boot to shell, every page fetched through the DSM from another worker" };
      metrics["smp.remote_memory.boot_ratio"] = { value: seconds / stock, unit: "ratio", note: "remote-memory boot / stock v86 boot, same run" };
      metrics["smp.remote_memory.faults"] = { value: s.agent.faults, unit: "count", note: "DSM faults during that boot" };
      metrics["smp.fault_us"] = {
        value: (s.agent.blockedMs * 1000) / s.agent.faults,
        unit: "µs",
        note: "mean time a vCPU waits for a page from another worker in the same process (shared-memory rings)",
      };
    } finally {
      await cluster.stop();
    }
    return metrics;
  },
};
export default smp;
