// What a correct machine reports: which checks must pass and which may be skipped, by CPU count.
// Tests and the bench use these lists, so a check added to the guest must be added here too
// (the tests fail on any check they do not expect).

import type { SelftestReport } from "./report.ts";

/** Checks that run on one CPU. `firmware.tables_consistent` needs both an MP table and a MADT. */
export const SINGLE_CPU_CHECKS = [
  "tsc.calibrated",
  "apic.ids_distinct",
  "ipi.self",
  "apic.timer_all_cpus",
  "ioapic.uart_irq_routed",
] as const;

export const FIRMWARE_TABLE_CHECK = "firmware.tables_consistent";

/** Checks that need 2 or more CPUs (`tso.iriw` needs 4). */
export const MULTI_CPU_CHECKS = [
  "smp.aps_started",
  "lock.spinlock_counter",
  "atomic.xadd_counter",
  "atomic.cmpxchg_counter",
  "tso.mp",
  "tso.sb_mfence",
  "tso.sb_locked",
  "tso.iriw",
  "ipi.fixed",
  "ipi.broadcast",
  "ipi.nmi",
  "ipi.roundtrip",
  "mem.private_counters",
  "mem.remote_data_seen",
] as const;

/** Measurements reported on any machine. */
export const SINGLE_CPU_RESULTS = [
  "tsc.mhz",
  "ipi.self_us",
  "apic.timer_khz",
  "cpu.loop_ms",
  "bandwidth.write_local",
  "bandwidth.read_local",
] as const;

/** Measurements that need 2 or more CPUs; `ipi.rtt.A.B` comes once per pair, `speedup.K` per K >= 2. */
export function multiCpuResults(cpus: number): string[] {
  if (cpus < 2) return [];
  const names = [
    "smp.boot_ms",
    "tso.sb_plain_relaxed",
    "bounce.handoff_ns",
    "falseshare.packed_ns",
    "falseshare.padded_ns",
    "falseshare.ratio",
    "bandwidth.read_remote",
    "bandwidth.write_remote",
  ];
  for (let a = 0; a < cpus; a++) for (let b = a + 1; b < cpus; b++) names.push(`ipi.rtt.${a}.${b}`);
  for (let k = 2; k <= cpus; k++) names.push(`speedup.${k}`);
  return names;
}

export interface Expectation {
  pass: string[];
  /** Names (checks or results) reported as SKIP, with a reason. */
  skip: string[];
  results: string[];
}

export function expectedReport(cpus: number, firmwareTables: boolean): Expectation {
  const pass: string[] = [...SINGLE_CPU_CHECKS];
  const skip: string[] = [];
  (firmwareTables ? pass : skip).push(FIRMWARE_TABLE_CHECK);
  for (const c of MULTI_CPU_CHECKS) {
    const runs = c === "tso.iriw" ? cpus >= 4 : cpus >= 2;
    (runs ? pass : skip).push(c);
  }
  if (cpus < 2) skip.push("bounce.handoff_ns");
  return { pass: pass.sort(), skip: skip.sort(), results: [...SINGLE_CPU_RESULTS, ...multiCpuResults(cpus)].sort() };
}

/** Every way a parsed report differs from what a correct machine with `cpus` CPUs reports; empty when it matches. */
export function reportProblems(
  report: SelftestReport,
  cpus: number,
  firmwareTables: boolean,
): string[] {
  const want = expectedReport(cpus, firmwareTables);
  const problems: string[] = [];
  if (report.summary.cpus !== cpus) problems.push(`the guest ran ${report.summary.cpus} CPU(s), expected ${cpus}`);
  for (const [name, o] of report.checks) {
    if (o.status === "fail") problems.push(`FAIL ${name}: ${o.detail}`);
    else if (o.status === "pass" && !want.pass.includes(name)) problems.push(`check ${name} passed but is not expected here (add it to expectations.ts)`);
    else if (o.status === "skip" && !want.skip.includes(name) && !want.pass.includes(name)) problems.push(`unexpected skip ${name}: ${o.reason}`);
  }
  for (const name of want.pass) {
    const o = report.checks.get(name);
    if (!o) problems.push(`check ${name} is missing`);
    else if (o.status === "skip") problems.push(`check ${name} should run on ${cpus} CPU(s) but was skipped: ${o.reason}`);
  }
  for (const name of want.skip) if (!report.checks.has(name)) problems.push(`${name} should be reported as skipped but is missing`);
  for (const name of want.results) if (!report.results.has(name)) problems.push(`result ${name} is missing`);
  for (const name of report.results.keys()) if (!want.results.includes(name)) problems.push(`unexpected result ${name} (add it to expectations.ts)`);
  return problems;
}
