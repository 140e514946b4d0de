// The SMP self-test guest's own figures (IPI round trips, page bounce, false sharing, speedup,
// bandwidth, TSC/APIC timer rates) on the reference QEMU -smp 2 and on stock v86 (one CPU).
// Names: selftest.<platform>.<RESULT name>, plus the run's wall time and one side-by-side ratio.

import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { describeFailures, parseSelftestOutput, type SelftestReport } from "../../src/guests/selftest/report.ts";
import { qemuVersion, runSelftestQemu } from "../../src/guests/selftest/run-qemu.ts";
import { runSelftestV86 } from "../../src/guests/selftest/run-v86.ts";
import type { BenchModule, Metrics } from "../types.ts";

function exportReport(metrics: Metrics, platform: string, where: string, report: SelftestReport, seconds: number): void {
  if (report.summary.fail) throw new Error(`self-test failed on ${where}:\n${describeFailures(report)}`);
  for (const [name, r] of report.results)
    metrics[`selftest.${platform}.${name}`] = { value: r.value, unit: r.unit, note: `${where}: ${r.how}` };
  metrics[`selftest.${platform}.run_s`] = { value: seconds, unit: "s", note: `${where}: emulator start to SUMMARY line, wall clock` };
}

const selftest: BenchModule = {
  prefixes: ["selftest."],
  async run(ctx) {
    const metrics: Metrics = {};
    const elf = await buildSelftest();
    let qemu: SelftestReport | undefined;
    if (qemuVersion()) {
      ctx.log("self-test guest on qemu-system-i386 -smp 2");
      const run = await runSelftestQemu({ elf, cpus: 2, timeoutMs: 300_000 });
      qemu = parseSelftestOutput(run.output);
      exportReport(metrics, "qemu2", "qemu-system-i386 TCG -smp 2", qemu, run.seconds);
    } else {
      ctx.log("qemu-system-i386 is not installed; selftest.qemu2.* left out (apt-get install -y qemu-system-x86)");
    }
    ctx.log("self-test guest on stock v86 (one CPU, no BIOS)");
    const run = await runSelftestV86({ elf, timeoutMs: 300_000 });
    const v86 = parseSelftestOutput(run.output);
    exportReport(metrics, "v86", "stock v86 0.5.462 in Node, 1 CPU", v86, run.seconds);
    const loopV86 = v86.results.get("cpu.loop_ms")?.value;
    const loopQemu = qemu?.results.get("cpu.loop_ms")?.value;
    if (loopV86 && loopQemu)
      metrics["selftest.v86_over_qemu.cpu_loop_ratio"] = {
        value: loopV86 / loopQemu,
        unit: "ratio",
        note: "same CPU-bound guest loop on one CPU, each timed by its own calibrated TSC: v86 time / QEMU TCG time, same run",
      };
    return metrics;
  },
};
export default selftest;
