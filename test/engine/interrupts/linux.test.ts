// Linux (the default guest, with v86's APIC and IOAPIC on) boots on a VcpuInterrupts BSP: every
// IOAPIC interrupt and every IPI goes through the hooks, decided by destination, and the kernel
// ends up using the IOAPIC. This is the path each node of an SMP cluster takes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { includes, VcpuInterrupts, type OutgoingInterrupt } from "../../../src/engine/interrupts/index.ts";
import { PROMPT_RE, serial0Console } from "../../../src/guests/serial-console.ts";
import { linuxV86Options } from "../../../src/runtime/nodejs/linux-v86.ts";

describe("Linux on a VcpuInterrupts BSP", () => {
  it("boots to a shell with all interrupts passing the hooks, and uses the IOAPIC", { timeout: 900_000 }, async () => {
    const sent: Record<string, number> = {};
    const notLocal: OutgoingInterrupt[] = [];
    let vi!: VcpuInterrupts;
    vi = await VcpuInterrupts.create({
      wasm: readFileSync(await ensureInstrumentedWasm()),
      apicId: 0,
      role: "bsp",
      hooks: {
        onSend: (msg: OutgoingInterrupt) => {
          const key = `${msg.source}:${msg.mode}`;
          sent[key] = (sent[key] ?? 0) + 1;
          const local = includes(msg, vi.addressing);
          if (!local) notLocal.push(msg);
          return local;
        },
      },
      v86: linuxV86Options({ acpi: true }),
    });
    const serial = serial0Console(vi.vcpu.emulator);
    try {
      await vi.vcpu.emulator.run();
      await serial.waitFor(PROMPT_RE, 600_000);
      const mark = serial.output().length;
      serial.send("cat /proc/interrupts; grep -c processor /proc/cpuinfo\n");
      await serial.waitFor(/\n1\r?\n/, 60_000, mark);
      expect(serial.output().slice(mark)).toMatch(/IO-APIC/);
    } finally {
      await vi.vcpu.destroy();
    }
    // The timer and the serial port's interrupts came from the IOAPIC, through the hook.
    expect(sent["ioapic:fixed"] ?? 0).toBeGreaterThan(10);
    // SeaBIOS looks for APs with a broadcast INIT and SIPI (all but self); everything else was local.
    expect(notLocal.map((m) => [m.mode, m.destination.shorthand])).toEqual([
      ["init", "all-but-self"],
      ["startup", "all-but-self"],
    ]);
    expect(vi.stats.sentLocal).toBe(vi.stats.sent + vi.stats.ioapicSent - 2);
    expect(vi.stats.dropped).toEqual([]);
  });
});
