// The reference: qemu-system-i386 (TCG) with 2 and 4 CPUs, SeaBIOS tables, every check passes.
// Without QEMU these tests fail and say how to install it; they never pass silently.
import { describe, expect, it } from "vitest";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { expectedReport } from "../../src/guests/selftest/expectations.ts";
import { checksWithStatus, describeFailures, parseSelftestOutput } from "../../src/guests/selftest/report.ts";
import { QEMU_INSTALL_HINT, qemuVersion, runSelftestQemu } from "../../src/guests/selftest/run-qemu.ts";

describe.each([2, 4])("self-test guest on qemu-system-i386 -smp %i", (cpus) => {
  it("passes every check", async () => {
    if (!qemuVersion()) expect.fail(`qemu-system-i386 is missing: ${QEMU_INSTALL_HINT}`);
    const elf = await buildSelftest();
    const run = await runSelftestQemu({ elf, cpus, timeoutMs: 300_000 });
    const report = parseSelftestOutput(run.output);
    const want = expectedReport(cpus, true);
    expect(describeFailures(report)).toBe("");
    expect(checksWithStatus(report, "pass").sort()).toEqual(want.pass);
    expect(checksWithStatus(report, "skip").sort()).toEqual(want.skip);
    expect([...report.results.keys()].sort()).toEqual(want.results);
    expect(report.summary).toMatchObject({ fail: 0, cpus });
    expect(run.exitCode).toBe(1); // isa-debug-exit: (0 << 1) | 1, the guest's "no failure"
    expect(report.info).toContainEqual({
      key: "firmware.madt",
      text: `apic_ids=${Array.from({ length: cpus }, (_, i) => i).join(",")}`,
    });
  });
});
