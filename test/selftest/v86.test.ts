// The self-test on stock v86 (one CPU): every single-CPU check passes, every multi-CPU check
// is skipped with a reason. Without a BIOS v86 jumps straight into the multiboot image, so there
// are no MP/ACPI tables; with Debian's SeaBIOS both tables exist and list one CPU.
import { describe, expect, it } from "vitest";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { expectedReport } from "../../src/guests/selftest/expectations.ts";
import { checksWithStatus, describeFailures, parseSelftestOutput, type SelftestReport } from "../../src/guests/selftest/report.ts";
import { runSelftestV86 } from "../../src/guests/selftest/run-v86.ts";

function expectReport(report: SelftestReport, cpus: number, firmwareTables: boolean): void {
  const want = expectedReport(cpus, firmwareTables);
  expect(describeFailures(report)).toBe("");
  expect(checksWithStatus(report, "pass").sort()).toEqual(want.pass);
  expect(checksWithStatus(report, "skip").sort()).toEqual(want.skip);
  expect([...report.results.keys()].sort()).toEqual(want.results);
  expect(report.summary.cpus).toBe(cpus);
}

describe("self-test guest on stock v86", () => {
  it("passes every single-CPU check without a BIOS (no firmware tables: uniprocessor)", async () => {
    const elf = await buildSelftest();
    const run = await runSelftestV86({ elf, cmdline: "scale=1" });
    const report = parseSelftestOutput(run.output);
    expectReport(report, 1, false);
    expect(report.info).toContainEqual(expect.objectContaining({ key: "cpus", text: expect.stringMatching(/^source=none described=1 /) }));
    const skip = report.checks.get("ipi.fixed");
    expect(skip).toEqual({ status: "skip", reason: "needs 2 or more CPUs; this machine runs 1" });
    expect(report.results.get("tsc.mhz")!.value).toBeGreaterThan(0);
  });

  it("passes with SeaBIOS too, whose MP table and MADT both list one CPU", async () => {
    const elf = await buildSelftest();
    const images = ensureGuestImages(() => {});
    const run = await runSelftestV86({ elf, bios: { bios: images.bios, vgaBios: images.vgaBios } });
    const report = parseSelftestOutput(run.output);
    expectReport(report, 1, true);
    expect(report.info).toContainEqual({ key: "firmware.madt", text: "apic_ids=0" });
    expect(report.info).toContainEqual({ key: "firmware.mp", text: "apic_ids=0" });
  });

  it("reports a bad command-line value as a failed check", async () => {
    const elf = await buildSelftest();
    const report = parseSelftestOutput((await runSelftestV86({ elf, cmdline: "scale=0" })).output);
    expect(report.checks.get("cmdline")).toEqual({
      status: "fail",
      detail: "scale must be an integer from 1 to 1000, got scale=0",
    });
  });
});
