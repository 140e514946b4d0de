// 2 and 4 vCPUs as one SMP machine (one thread, pages moved between them on faults): SeaBIOS finds the
// AP through the forwarded INIT/SIPI, and the self-test guest boots it and runs its SMP checks
// (IPIs both ways, shared-memory litmus tests, locked counters) through the engine's hooks.
import { describe, expect, it } from "vitest";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { readArrayBuffer as ab } from "../../../src/runtime/nodejs/linux-v86.ts";
import { startSmpMachine } from "../../../harness/nodejs/smp-machine.ts";

describe("VcpuInterrupts as one SMP machine", () => {
  it.each([2, 4])("runs the self-test guest with %i CPUs", { timeout: 900_000 }, async (n) => {
    const elf = await buildSelftest();
    const images = ensureGuestImages(() => {});
    const m = await startSmpMachine(n, {
      multiboot: { buffer: ab(elf) },
      cmdline: "scale=1",
      acpi: true,
      memory_size: 64 << 20,
      vga_memory_size: 2 << 20,
      bios: { buffer: ab(images.bios) },
      vga_bios: { buffer: ab(images.vgaBios) },
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    try {
      await m.waitFor(/SUMMARY[^\n]*\n/, 600_000);
      const report = parseSelftestOutput(m.output());
      expect(reportProblems(report, n, true), m.output()).toEqual([]);
      expect(report.summary).toMatchObject({ fail: 0, cpus: n });
      // Both directions really went through the hooks and the page moves.
      expect(m.cpus[1].stats.sent).toBeGreaterThan(0);
      expect(m.stats.ipis).toBeGreaterThan(m.cpus[1].stats.sent);
      expect(m.stats.pageMoves).toBeGreaterThan(1000);
    } finally {
      await m.destroy();
    }
  });
});
