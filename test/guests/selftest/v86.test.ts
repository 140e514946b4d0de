// The self-test on stock v86 (one CPU): every single-CPU check passes, every multi-CPU check
// is skipped with a reason. Without a BIOS v86 jumps straight into the multiboot image, so there
// are no MP/ACPI tables; with Debian's SeaBIOS both tables exist and list one CPU.
import { describe, expect, it } from "vitest";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { runSelftestV86 } from "../../../src/guests/selftest/run-v86.ts";

describe("self-test guest on stock v86", () => {
  it("passes every single-CPU check without a BIOS (no firmware tables: uniprocessor)", async () => {
    const elf = await buildSelftest();
    const report = parseSelftestOutput((await runSelftestV86({ elf, cmdline: "scale=1" })).output);
    expect(reportProblems(report, 1, false)).toEqual([]);
    expect(report.info).toContainEqual(expect.objectContaining({ key: "cpus", text: expect.stringMatching(/^source=none described=1 /) }));
    expect(report.checks.get("ipi.fixed")).toEqual({ status: "skip", reason: "needs 2 or more CPUs; this machine runs 1" });
    expect(report.checks.get("tso.iriw")).toEqual({ status: "skip", reason: "needs 4 CPUs (2 writers, 2 readers)" });
    expect(report.results.get("tsc.mhz")!.value).toBeGreaterThan(0);
  });

  it("passes with SeaBIOS too, whose MP table and MADT both list one CPU", async () => {
    const elf = await buildSelftest();
    const images = ensureGuestImages(() => {});
    const run = await runSelftestV86({ elf, bios: { bios: images.bios, vgaBios: images.vgaBios } });
    const report = parseSelftestOutput(run.output);
    expect(reportProblems(report, 1, true)).toEqual([]);
    expect(report.info).toContainEqual({ key: "firmware.madt", text: "apic_ids=0" });
    expect(report.info).toContainEqual({ key: "firmware.mp", text: "apic_ids=0" });
  });

  it("fails, and says why, on bad command-line values and on a machine without a local APIC", async () => {
    const elf = await buildSelftest();
    const bad = parseSelftestOutput((await runSelftestV86({ elf, cmdline: "scale=0 inject=everything" })).output);
    expect(bad.checks.get("cmdline.scale")).toEqual({ status: "fail", detail: "scale must be an integer from 1 to 1000, got scale=0" });
    expect(bad.checks.get("cmdline.inject")).toEqual({ status: "fail", detail: "inject knows only misroute-ipi, got inject=everything" });
    const noApic = parseSelftestOutput((await runSelftestV86({ elf, acpi: false })).output);
    expect(noApic.checks.get("cpu.features")).toEqual({
      status: "fail",
      detail: "no local APIC (CPUID.1:EDX bit 9); on v86 pass acpi: true",
    });
    expect(noApic.summary.fail).toBe(1);
  });
});
