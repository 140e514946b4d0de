// The default Linux guest on the extended engine (a Vcpu), driven through its serial console,
// side by side with stock v86 (test/support/serial-vm.ts). Shared by the identity test and the bench.
import { readFileSync } from "node:fs";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { Vcpu, type FaultHandler } from "../../../src/engine/vcpu.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { PROMPT_RE } from "../../support/serial-vm.ts";

const bytes = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

export interface EngineLinux {
  vcpu: Vcpu;
  output(): string;
  send(text: string): void;
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<string>;
  destroy(): Promise<void>;
}

/** Creates the Vcpu; `setup` runs before the guest starts (e.g. to mark pages read-only). */
export async function startLinuxOnEngine(
  options: { memoryMiB?: number; onFault?: FaultHandler; setup?: (vcpu: Vcpu) => void } = {},
): Promise<EngineLinux> {
  const paths = ensureGuestImages();
  const wasm = readFileSync(await ensureInstrumentedWasm());
  const vcpu = await Vcpu.create({
    wasm,
    onFault: options.onFault,
    v86: {
      bios: { buffer: bytes(paths.bios) },
      vga_bios: { buffer: bytes(paths.vgaBios) },
      bzimage: { buffer: bytes(paths.bzImage) },
      initrd: { buffer: bytes(paths.initramfs) },
      cmdline: paths.cmdline,
      memory_size: (options.memoryMiB ?? 128) * 1024 * 1024,
      vga_memory_size: 2 * 1024 * 1024,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    },
  });
  let out = "";
  const waiters = new Set<() => void>();
  vcpu.emulator.add_listener("serial0-output-byte", (b: number) => {
    out += String.fromCharCode(b);
    for (const w of waiters) w();
  });
  options.setup?.(vcpu);
  await vcpu.emulator.run();
  return {
    vcpu,
    output: () => out,
    send: (text) => vcpu.emulator.serial0_send(text),
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out.slice(from))) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(out);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} on the engine's serial console within ${timeoutMs / 1000} s; last output:\n${out.slice(-1500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    destroy: () => vcpu.destroy(),
  };
}

/** Seconds from creating the engine vCPU to the shell prompt. */
export async function measureEngineBootSeconds(options: Parameters<typeof startLinuxOnEngine>[0] = {}): Promise<{ seconds: number; vcpu: Vcpu }> {
  const start = performance.now();
  const vm = await startLinuxOnEngine(options);
  try {
    await vm.waitFor(PROMPT_RE, 600_000);
    return { seconds: (performance.now() - start) / 1000, vcpu: vm.vcpu };
  } finally {
    await vm.destroy();
  }
}

/**
 * Console output with what legitimately differs between two boots removed: printk timestamps
 * and figures measured against the host clock (calibration, BogoMIPS, MHz, timings).
 */
export function normalizeConsole(text: string): string[] {
  return text
    .replace(/\r/g, "")
    .split("\n")
    .map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ""))
    .filter((l) => !/BogoMIPS|MHz|calibrat|clocksource|tsc:|sched_clock|took \d|usecs|ms$|per second|lpj=|jiffies/i.test(l))
    .map((l) => l.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/g, "DATE").replace(/\(\d{9,}\)/g, "(EPOCH)").replace(/\d+\.\d+/g, "#"))
    // %p prints hashed pointers, different on every boot
    .map((l) => l.replace(/structure at 0x[0-9a-f]+/, "structure at PTR"));
}
