// Many-to-one on one machine, in Node worker_threads. Until application processors start (SIPI
// forwarding), what is measurable is the DSM fault path under a real boot: Linux on a vCPU whose
// every page comes from another worker.

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { startCluster } from "../../src/platform/node/cluster.ts";
import type { BenchModule, Metrics } from "../types.ts";

const smp: BenchModule = {
  prefixes: ["smp."],
  async run(ctx) {
    const metrics: Metrics = {};
    if (!ctx.wants("smp.remote_memory") && !ctx.wants("smp.fault_us")) return metrics;
    const stock = await ctx.stockBootSeconds();
    const g = ensureGuestImages();
    ctx.log("Linux on a vCPU whose RAM is owned by another worker");
    const start = performance.now();
    const cluster = startCluster({
      wasmPath: await ensureInstrumentedWasm(),
      guest: { kind: "linux", bios: g.bios, vgaBios: g.vgaBios, bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
      nodes: [{ runCpu: false }, { runCpu: true }],
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
