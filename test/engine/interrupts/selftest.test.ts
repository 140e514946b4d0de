// The project's self-test guest (an independent SMP test suite) on a VcpuInterrupts vCPU: with every
// interrupt passing the hooks, every single-CPU check passes, as on stock v86.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { VcpuInterrupts } from "../../../src/engine/interrupts/index.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";

const ab = (p: string): ArrayBuffer => {
  const b = readFileSync(p);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

async function run(withBios: boolean, apicId: number): Promise<{ output: string; vi: VcpuInterrupts }> {
  const elf = await buildSelftest();
  const images = ensureGuestImages(() => {});
  const vi = await VcpuInterrupts.create({
    wasm: readFileSync(await ensureInstrumentedWasm()),
    apicId,
    role: "bsp",
    v86: {
      multiboot: { buffer: ab(elf) },
      cmdline: "scale=1",
      acpi: true,
      memory_size: 64 << 20,
      vga_memory_size: 2 << 20,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
      ...(withBios ? { bios: { buffer: ab(images.bios) }, vga_bios: { buffer: ab(images.vgaBios) } } : {}),
    },
  });
  let out = "";
  const summary = new Promise<void>((resolve) =>
    vi.vcpu.emulator.add_listener("serial0-output-byte", (b: number) => {
      out += String.fromCharCode(b);
      if (b === 10 && /SUMMARY[^\n]*\n$/.test(out)) resolve();
    }),
  );
  try {
    await vi.vcpu.emulator.run();
    await summary;
  } finally {
    await vi.vcpu.destroy();
  }
  return { output: out, vi };
}

describe("self-test guest on a VcpuInterrupts vCPU", () => {
  it("passes every single-CPU check without a BIOS, on a CPU whose APIC ID is 7", { timeout: 300_000 }, async () => {
    const { output, vi } = await run(false, 7);
    const report = parseSelftestOutput(output);
    expect(reportProblems(report, 1, false), output).toEqual([]);
    expect(report.info).toContainEqual(expect.objectContaining({ key: "cpus", text: expect.stringMatching(/ bsp_apic_id=7 /) }));
    expect(vi.stats.dropped).toEqual([]);
  });

  it("passes with SeaBIOS too (firmware tables list APIC 0)", { timeout: 300_000 }, async () => {
    const { output } = await run(true, 0);
    const report = parseSelftestOutput(output);
    expect(reportProblems(report, 1, true), output).toEqual([]);
    expect(report.info).toContainEqual({ key: "firmware.madt", text: "apic_ids=0" });
  });
});
