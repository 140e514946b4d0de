// Many-to-one on one machine, in Node worker_threads: Linux with N vCPUs in N workers (our
// firmware, the DSM, forwarded interrupts and I/O) against stock v86 with one CPU; the DSM
// fault path alone: Linux on one vCPU whose every page comes from another worker; and the latency
// between vCPUs (IPI round trip, page hand-off) against the raw round trip of the links.

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { describeFailures, parseSelftestOutput, type SelftestReport } from "../../src/guests/selftest/report.ts";
import { startCluster } from "../../src/runtime/nodejs/cluster.ts";
import type { ServeOptions } from "../../src/runtime/node/vcpu-node.ts";
import { ringEcho } from "../../harness/nodejs/ring-echo.ts";
import type { BenchContext, BenchModule, Metrics } from "../types.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const list = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join(", ");

/** The self-test guest with its 2 vCPUs in 2 workers, each node serving messages as `serve` says. */
async function selftestOn2(wasmPath: string, serve: ServeOptions): Promise<SelftestReport> {
  const cluster = startCluster({
    wasmPath,
    guest: { kind: "multiboot", elf: await buildSelftest(), cmdline: "", memoryMiB: 64, smp: true },
    nodes: [{ vcpu: 0, serve }, { vcpu: 1, serve }],
    deviceNode: 0,
  });
  try {
    const report = parseSelftestOutput(await cluster.waitFor(/SUMMARY[^\n]*\n/, 900_000));
    if (report.summary.fail) throw new Error(`self-test failed in 2 workers:\n${describeFailures(report)}`);
    return report;
  } finally {
    await cluster.stop();
  }
}

const ROUNDS = 3;
const LATENCY_METRICS = [
  "smp.ring_rtt_us",
  "smp.ring_watch_rtt_us",
  "smp.ipi_rtt_us.2",
  "smp.ipi_rtt_ratio.2",
  "smp.ipi_rtt_us.2.timer_only",
  "smp.ipi_rtt_gain.2",
  "smp.page_handoff_us.2",
  "smp.page_handoff_us.2.timer_only",
  "smp.remote_read_page_us.2",
  "smp.remote_read_page_us.2.timer_only",
  "smp.remote_read_page_ratio.2",
];
// How nodes served messages before they watched their doorbell: a 1 ms timer between run slices.
const TIMER_ONLY: ServeOptions = { inSlice: false, onDoorbell: false, timerMs: 1 };

/**
 * Latency between vCPUs in 2 workers on shared memory: the self-test's IPI round trip, page
 * hand-off and remote read rate, with the nodes serving as they do now and as they did with the
 * timer only (alternated, same run), against the raw round trip of the links themselves.
 */
async function latency(ctx: BenchContext, wasmPath: string): Promise<Metrics> {
  ctx.log("raw 4 KiB round trip over the shared-memory links (2 workers)");
  const waitRtt = median((await ringEcho({ count: 2000, bytes: 4096, mode: "wait" })).rttsUs);
  const watchRtt = median((await ringEcho({ count: 2000, bytes: 4096, mode: "watch" })).rttsUs);
  const runs: Record<"now" | "timer", SelftestReport[]> = { now: [], timer: [] };
  for (let i = 0; i < ROUNDS; i++)
    for (const mode of ["now", "timer"] as const) {
      ctx.log(`self-test in 2 workers, nodes serving ${mode === "now" ? "on doorbell and chunk ends" : "on a 1 ms timer only"} (${i + 1}/${ROUNDS})`);
      runs[mode].push(await selftestOn2(wasmPath, mode === "now" ? {} : TIMER_ONLY));
    }
  const pick = (mode: "now" | "timer", name: string) => runs[mode].map((r) => r.results.get(name)!.value);
  const rtt = { now: pick("now", "ipi.rtt.0.1"), timer: pick("timer", "ipi.rtt.0.1") };
  const handoff = { now: pick("now", "bounce.handoff_ns").map((ns) => ns / 1000), timer: pick("timer", "bounce.handoff_ns").map((ns) => ns / 1000) };
  // bandwidth.read_remote sums 256 KiB another CPU wrote: every page is one read fault served remotely.
  const pageUs = { now: pick("now", "bandwidth.read_remote").map((mbs) => 4096 / mbs), timer: pick("timer", "bandwidth.read_remote").map((mbs) => 4096 / mbs) };
  const m: Metrics = {
    "smp.ring_rtt_us": { value: waitRtt, unit: "µs", note: "4 KiB frame echoed between 2 workers over the SAB rings, echoing node blocked on its doorbell (median of 2000)" },
    "smp.ring_watch_rtt_us": { value: watchRtt, unit: "µs", note: "same, echoing node woken from its event loop (LocalLinks.watch, Atomics.waitAsync)" },
    "smp.ipi_rtt_us.2": { value: median(rtt.now), unit: "µs", note: `self-test ipi.rtt.0.1, 2 vCPUs in 2 workers, median of runs ${list(rtt.now, 0)} µs` },
    "smp.ipi_rtt_ratio.2": { value: median(rtt.now) / watchRtt, unit: "ratio", note: "smp.ipi_rtt_us.2 / smp.ring_watch_rtt_us, same run" },
    "smp.ipi_rtt_us.2.timer_only": { value: median(rtt.timer), unit: "µs", note: `same, nodes serving on a 1 ms timer only (before doorbell wake-up), runs ${list(rtt.timer, 0)} µs` },
    "smp.ipi_rtt_gain.2": { value: median(rtt.timer) / median(rtt.now), unit: "ratio", note: "smp.ipi_rtt_us.2.timer_only / smp.ipi_rtt_us.2, alternated runs, same run" },
    "smp.page_handoff_us.2": { value: median(handoff.now), unit: "µs", note: `self-test bounce.handoff_ns: one word in its own page passed between the 2 vCPUs, runs ${list(handoff.now, 0)} µs` },
    "smp.page_handoff_us.2.timer_only": { value: median(handoff.timer), unit: "µs", note: `same, timer only, runs ${list(handoff.timer, 0)} µs` },
    "smp.remote_read_page_us.2": { value: median(pageUs.now), unit: "µs", note: `4096 / self-test bandwidth.read_remote: time per page read from the other worker (one read fault each), runs ${list(pageUs.now, 0)} µs` },
    "smp.remote_read_page_us.2.timer_only": { value: median(pageUs.timer), unit: "µs", note: `same, timer only, runs ${list(pageUs.timer, 0)} µs` },
  };
  m["smp.remote_read_page_ratio.2"] = { value: m["smp.remote_read_page_us.2"]!.value / waitRtt, unit: "ratio", note: "smp.remote_read_page_us.2 / smp.ring_rtt_us, same run" };
  return m;
}

const smp: BenchModule = {
  prefixes: ["smp."],
  async run(ctx) {
    const metrics: Metrics = {};
    const g = ensureGuestImages();
    const wasmPath = await ensureInstrumentedWasm();
    if (LATENCY_METRICS.some((name) => ctx.wants(name))) Object.assign(metrics, await latency(ctx, wasmPath));
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
    if (ctx.wants("smp.boot_s.2.timer_only") || ctx.wants("smp.serve_boot_gain.2")) {
      // The same boot with the nodes serving each other on a 1 ms timer only (before doorbell
      // wake-up and serving between chunks): faults then wait for the owner's slice to end.
      ctx.log("Linux with 2 vCPUs in 2 workers, nodes serving on a 1 ms timer only");
      const start = performance.now();
      const cluster = startCluster({
        wasmPath,
        guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
        nodes: [0, 1].map((i) => ({ vcpu: i, serve: TIMER_ONLY })),
        deviceNode: 0,
      });
      try {
        await cluster.waitFor(/giantweb:\/root# /, 1_800_000);
        const seconds = (performance.now() - start) / 1000;
        const faults = (await Promise.all([0, 1].map((i) => cluster.stats(i)))).reduce((a, st) => a + st.agent.faults, 0);
        metrics["smp.boot_s.2.timer_only"] = { value: seconds, unit: "s", note: `as smp.boot_s.2, nodes serving on a 1 ms timer only; ${faults} DSM faults` };
        const now = metrics["smp.boot_s.2"];
        if (now) metrics["smp.serve_boot_gain.2"] = { value: seconds / now.value, unit: "ratio", note: "smp.boot_s.2.timer_only / smp.boot_s.2, same run" };
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
