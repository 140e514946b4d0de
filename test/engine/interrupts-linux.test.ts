// Linux (the default guest, with v86's APIC and IOAPIC on) boots on a VcpuInterrupts BSP: every
// IOAPIC interrupt and every IPI goes through the hooks, decided by destination, and the kernel
// ends up using the IOAPIC. This is the path each node of an SMP cluster takes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { includes, VcpuInterrupts, type OutgoingInterrupt } from "../../src/engine/interrupts/index.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { PROMPT_RE } from "../support/serial-vm.ts";

const bytes = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

function waitFor(get: () => string, pattern: RegExp, from: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const text = get().slice(from);
      if (pattern.test(text)) return resolve(text);
      if (Date.now() - started > timeoutMs) return reject(new Error(`no ${pattern} within ${timeoutMs / 1000} s; output:\n${get().slice(-1500)}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

describe("Linux on a VcpuInterrupts BSP", () => {
  it("boots to a shell with all interrupts passing the hooks, and uses the IOAPIC", { timeout: 900_000 }, async () => {
    const paths = ensureGuestImages();
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
      v86: {
        bios: { buffer: bytes(paths.bios) },
        vga_bios: { buffer: bytes(paths.vgaBios) },
        bzimage: { buffer: bytes(paths.bzImage) },
        initrd: { buffer: bytes(paths.initramfs) },
        cmdline: paths.cmdline,
        acpi: true,
        memory_size: 128 * 1024 * 1024,
        vga_memory_size: 2 * 1024 * 1024,
        autostart: false,
        disable_keyboard: true,
        disable_mouse: true,
        disable_speaker: true,
      },
    });
    let out = "";
    vi.vcpu.emulator.add_listener("serial0-output-byte", (b: number) => (out += String.fromCharCode(b)));
    try {
      await vi.vcpu.emulator.run();
      await waitFor(() => out, PROMPT_RE, 0, 600_000);
      const mark = out.length;
      vi.vcpu.emulator.serial0_send("cat /proc/interrupts; grep -c processor /proc/cpuinfo\n");
      const text = await waitFor(() => out, /\n1\r?\n/, mark, 60_000);
      expect(text).toMatch(/IO-APIC/);
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
