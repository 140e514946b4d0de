// The reference: qemu-system-i386 (TCG) with 2 and 4 CPUs, SeaBIOS tables, every check passes.
// Without QEMU these tests fail and say how to install it; they never pass silently.
import { describe, expect, it } from "vitest";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { QEMU_INSTALL_HINT, qemuVersion, runSelftestQemu } from "../../../src/guests/selftest/run-qemu.ts";

function requireQemu(): void {
  if (!qemuVersion()) expect.fail(`qemu-system-i386 is missing: ${QEMU_INSTALL_HINT}`);
}

describe.each([2, 4])("self-test guest on qemu-system-i386 -smp %i", (cpus) => {
  it("passes every check", async () => {
    requireQemu();
    const elf = await buildSelftest();
    const run = await runSelftestQemu({ elf, cpus, timeoutMs: 300_000 });
    const report = parseSelftestOutput(run.output);
    expect(reportProblems(report, cpus, true)).toEqual([]);
    expect(run.exitCode).toBe(1); // isa-debug-exit: (0 << 1) | 1, the guest's "no failure"
    expect(report.info).toContainEqual({
      key: "firmware.madt",
      text: `apic_ids=${Array.from({ length: cpus }, (_, i) => i).join(",")}`,
    });
  });
});

describe("self-test guest with a planted bug", () => {
  it("catches fixed IPIs delivered to the wrong CPU", async () => {
    requireQemu();
    const elf = await buildSelftest();
    const run = await runSelftestQemu({ elf, cpus: 2, cmdline: "inject=misroute-ipi", timeoutMs: 300_000 });
    const report = parseSelftestOutput(run.output);
    expect(report.checks.get("ipi.fixed")).toEqual({ status: "fail", detail: "an IPI never reached CPU 1" });
    expect(report.summary.fail).toBe(1);
    expect(run.exitCode).toBe(3); // (1 << 1) | 1: the guest reported failures
  });
});
