// One Linux VM over two tabs of one Chromium (loopback WebRTC): vCPU 0 and the devices in tab A,
// vCPU 1 in tab B. Boot to shell against stock v86 with one CPU, and the remote page-fault
// latency of vCPU 1 (every fault of node 1 is served by node 0, in the other tab) against the raw
// 4 KiB data-channel round trip measured in the same run (with the fabric lab's echo).
// Then the self-test guest with vCPU 0 in tab A and vCPU 1 in tab B, three runs: its forwarded IPI
// round trip between the tabs (the guest times it on CPU 0's TSC) and its parallel speedup.

import { percentile } from "../../src/fabric/stats.ts";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import type { BrowserContext } from "playwright-core";
import { launchChromium } from "../../harness/browser/browser.ts";
import { startWebServer } from "../../harness/browser/web-server.ts";
import { create, join, lab, openLab } from "../../harness/browser/fabric-lab-driver.ts";
import { createCluster, joinCluster, linkCounters, nodeStatus, openPage, waitForConsole } from "../../harness/browser/cluster-driver.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { reportProblems } from "../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../src/guests/selftest/report.ts";
import { runSelftestOnTabs } from "../../harness/browser/selftest-tabs.ts";
import type { BenchModule, Metrics } from "../types.ts";

const ROUND_TRIPS = 500;
/** Self-test runs on two tabs; each figure is the median over them (one run's speedup is noisy on a shared machine). */
const SELFTEST_RUNS = 3;
// The shell writes a cursor-position query (ESC [6n) after its prompt, so nothing is anchored at the end.
const PROMPT = /giantweb:\/root# /;

const tabs: BenchModule = {
  prefixes: ["tabs.boot_ratio", "tabs.fault", "tabs.dsm_faults", "tabs.vm_", "tabs.ipi", "tabs.speedup", "tabs.selftest"],
  async run(ctx) {
    const linux = ["tabs.boot_ratio.2", "tabs.fault_p50", "tabs.fault_p50_ratio", "tabs.dsm_faults.2", "tabs.vm_frames.2"].some((m) => ctx.wants(m));
    const selftest = ["tabs.ipi_p50", "tabs.ipi_rtt_p50", "tabs.speedup.2", "tabs.selftest_s"].some((m) => ctx.wants(m));
    await ensureInstrumentedWasm();
    if (selftest) await buildSelftest();
    if (linux) {
      ensureGuestImages();
      buildFirmware();
    }
    const stock = linux ? await ctx.stockBootSeconds() : 0;
    const server = await startWebServer();
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const out: Metrics = {};

      // The raw round trip between two tabs of this browser, now (the same code as the fabric bench).
      ctx.log(`tabs: ${ROUND_TRIPS} 4 KiB round trips between two lab tabs`);
      const la = await openLab(context, `${server.url}fabric-lab.html`);
      const lb = await openLab(context, await create(la, 2));
      await join(lb);
      await lab(la, (l) => l.rtts(1, 100, 4096));
      const rtts = await lab(la, (l, n) => l.rtts(1, n, 4096), ROUND_TRIPS);
      const rtt = percentile(rtts, 50)!;
      await lb.close();
      await la.close();
      out["tabs.fault_rtt_p50"] = { value: rtt, unit: "ms", note: `4 KiB echo between two tabs, ${ROUND_TRIPS} round trips, same run as the faults and IPIs (the fabric bench's tabs.rtt_p50 is a separate run)` };

      if (selftest) Object.assign(out, await selftestOnTwoTabs(ctx, context, server.url, rtt));
      if (!linux) return out;

      ctx.log("tabs: booting Linux with vCPU 0 in tab A and vCPU 1 in tab B");
      const a = await openPage(context, server.url);
      const link = await createCluster(a, 2, 1);
      const b = await openPage(context, link);
      const start = performance.now();
      await joinCluster(b, 1); // the slices now cover both vCPUs: tab A boots at once
      await waitForConsole(a, PROMPT, "the shell prompt on tab A");
      const seconds = (performance.now() - start) / 1000;
      out["tabs.boot_ratio.2"] = {
        value: seconds / stock,
        unit: "ratio",
        note: `2 vCPUs on 2 tabs: ${seconds.toFixed(1)} s from the join (images fetched, workers started) to the shell / stock v86 one CPU ${stock.toFixed(1)} s`,
      };

      // Node 1's status arrives every 500 ms; wait for one taken after the prompt.
      await b.waitForTimeout(1500);
      const s1 = (await nodeStatus(b)).find((s) => s.node === 1);
      if (!s1?.faultMs) throw new Error("tab B reported no fault latency for node 1");
      out["tabs.fault_p50"] = { value: s1.faultMs.p50, unit: "ms", note: `node 1's last ${s1.faultMs.count} DSM faults during the boot (each served by node 0 in the other tab); p99 ${s1.faultMs.p99.toFixed(2)} ms` };
      out["tabs.fault_p50_ratio"] = { value: s1.faultMs.p50 / rtt, unit: "ratio", note: "tabs.fault_p50 / tabs.fault_rtt_p50, same run" };
      out["tabs.dsm_faults.2"] = { value: s1.faults, unit: "count", note: "node 1's DSM faults during the 2-tab boot" };
      const c = await linkCounters(a);
      if (c) out["tabs.vm_frames.2"] = { value: c.framesOut + c.framesIn, unit: "count", note: `VM link frames tab A sent and received over the fabric during the boot (${((c.bytesOut + c.bytesIn) / 1048576).toFixed(1)} MiB)` };
      if (a.errors.length || b.errors.length) throw new Error(`page errors: ${[...a.errors, ...b.errors].join("; ")}`);
      return out;
    } finally {
      await browser.close();
      await server.close();
    }
  },
};

/** The self-test guest on two tabs, SELFTEST_RUNS times; medians of its IPI round trip and speedup. */
async function selftestOnTwoTabs(ctx: Parameters<BenchModule["run"]>[0], context: BrowserContext, url: string, rawRttMs: number): Promise<Metrics> {
  const rtts: number[] = [];
  const speedups: number[] = [];
  const seconds: number[] = [];
  for (let i = 0; i < SELFTEST_RUNS; i++) {
    ctx.log(`tabs: self-test guest with vCPU 0 in tab A and vCPU 1 in tab B (run ${i + 1} of ${SELFTEST_RUNS})`);
    const run = await runSelftestOnTabs(context, url, [1, 1]);
    const report = parseSelftestOutput(run.output);
    const problems = reportProblems(report, 2, true);
    if (problems.length) throw new Error(`the self-test on two tabs did not pass:\n${problems.join("\n")}`);
    if (run.errors.length) throw new Error(`page errors: ${run.errors.join("; ")}`);
    rtts.push(report.results.get("ipi.rtt.0.1")!.value / 1000);
    speedups.push(report.results.get("speedup.2")!.value);
    seconds.push(run.seconds);
  }
  const med = (xs: number[]) => percentile(xs, 50)!;
  const list = (xs: number[], d: number) => xs.map((x) => x.toFixed(d)).join(", ");
  const rtt = med(rtts);
  return {
    "tabs.ipi_p50": {
      value: rtt / 2,
      unit: "ms",
      note: `one way: half the self-test's median IPI round trip CPU 0 -> CPU 1 -> CPU 0 between two tabs (guest TSC on CPU 0), median of ${SELFTEST_RUNS} runs`,
    },
    "tabs.ipi_rtt_p50": { value: rtt, unit: "ms", note: `the self-test's ipi.rtt.0.1 between two tabs, runs: ${list(rtts, 2)} ms; raw 4 KiB data-channel round trip ${rawRttMs.toFixed(2)} ms in the same run` },
    "tabs.ipi_rtt_ratio": { value: rtt / rawRttMs, unit: "ratio", note: "tabs.ipi_rtt_p50 / tabs.fault_rtt_p50 (raw data-channel round trip), same run" },
    "tabs.speedup.2": {
      value: med(speedups),
      unit: "ratio",
      note: `the self-test's speedup.2 (private xorshift32 work, time on 1 vCPU / on 2 vCPUs in 2 tabs), median of runs ${list(speedups, 2)}`,
    },
    "tabs.selftest_s": { value: med(seconds), unit: "s", note: `2 tabs: last join to the self-test's SUMMARY line, median of ${list(seconds, 1)} s` },
  };
}

export default tabs;
