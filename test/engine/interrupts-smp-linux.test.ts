// Debian's SMP kernel on 2 and 4 VcpuInterrupts (one thread, pages moved between them on faults):
// SeaBIOS finds the AP through the forwarded INIT/SIPI, Linux starts it with its own INIT/SIPI,
// and the shell reports them all. The engine half of "a real Linux guest that reports nproc = N".
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { PROMPT_RE } from "../support/serial-vm.ts";
import { startSmpMachine } from "./interrupts-smp-support.ts";

const ab = (p: string): ArrayBuffer => {
  const b = readFileSync(p);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

async function waitFor(get: () => string, pattern: RegExp, from: number, what: string): Promise<string> {
  for (let i = 0; ; i++) {
    const text = get().slice(from);
    if (pattern.test(text)) return text;
    if (i > 1200) throw new Error(`no ${what} after 10 minutes; output:\n${get().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe("Linux SMP on VcpuInterrupts", () => {
  it.each([2, 4])("boots with %i CPUs online and nproc agrees", { timeout: 900_000 }, async (n) => {
    const paths = ensureGuestImages(() => {});
    const m = await startSmpMachine(n, {
      bios: { buffer: ab(paths.bios) },
      vga_bios: { buffer: ab(paths.vgaBios) },
      bzimage: { buffer: ab(paths.bzImage) },
      initrd: { buffer: ab(paths.initramfs) },
      cmdline: paths.cmdline,
      acpi: true,
      memory_size: 128 << 20,
      vga_memory_size: 2 << 20,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    try {
      const boot = await waitFor(m.output, PROMPT_RE, 0, "shell prompt");
      expect(boot).toMatch(new RegExp(`smp: Brought up 1 node, ${n} CPUs`));
      expect(boot).toMatch(new RegExp(`${n} CPU\\(s\\) online`));
      const mark = m.output().length;
      m.cpus[0].vcpu.emulator.serial0_send("nproc\n");
      expect(await waitFor(m.output, new RegExp(`\n${n}\r?\n`), mark, "nproc's answer")).toMatch(new RegExp(`\n${n}\r?\n`));
      // Every AP ran Linux: it sent IPIs of its own and took interrupts forwarded to it.
      for (const ap of m.cpus.slice(1)) {
        expect(ap.runState).toBe("running");
        expect(ap.stats.sent).toBeGreaterThan(0);
        expect(ap.stats.injected.fixed).toBeGreaterThan(0);
      }
    } finally {
      await m.destroy();
    }
  });
});
