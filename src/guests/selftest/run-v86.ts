// Boots the self-test guest on stock v86 in Node (one CPU) and collects its serial output.
// v86 loads a multiboot ELF itself (`multiboot` option); without a BIOS it jumps straight to
// the entry point, so there are no firmware CPU tables and the guest runs uniprocessor.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { V86 } from "v86";
import { SerialLineCollector, SelftestRunError, type SelftestRun } from "./run-common.ts";

export interface V86RunOptions {
  elf: string;
  /** Multiboot command line, e.g. "scale=2". */
  cmdline?: string;
  memoryMiB?: number;
  /** SeaBIOS and VGA BIOS images; when given, v86 runs the BIOS first and loads the guest as an option ROM. */
  bios?: { bios: string; vgaBios: string };
  /** v86's `acpi` option, which also switches its local APIC and IOAPIC on (default true). */
  acpi?: boolean;
  /** Wall-clock limit for the whole run (the guest ends with a SUMMARY line). */
  timeoutMs?: number;
  onLine?: (line: string) => void;
}

/** The v86 package resolves its wasm relative to the page in ESM builds, so Node must name it. */
export function v86WasmPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("v86")), "v86.wasm");
}

const toArrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

export async function runSelftestV86(opts: V86RunOptions): Promise<SelftestRun> {
  const memoryMiB = opts.memoryMiB ?? 64;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 8 || memoryMiB > 2048)
    throw new SelftestRunError(`v86 memoryMiB must be an integer from 8 to 2048, got ${memoryMiB}`, "");
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const collector = new SerialLineCollector(opts.onLine);
  const start = performance.now();
  const emulator = new V86({
    wasm_path: v86WasmPath(),
    memory_size: memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    multiboot: { buffer: toArrayBuffer(readFileSync(opts.elf)) },
    cmdline: opts.cmdline ?? "",
    // acpi also switches on v86's local APIC and IOAPIC, which the guest needs
    acpi: opts.acpi ?? true,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    ...(opts.bios
      ? { bios: { buffer: toArrayBuffer(readFileSync(opts.bios.bios)) }, vga_bios: { buffer: toArrayBuffer(readFileSync(opts.bios.vgaBios)) } }
      : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new SelftestRunError(`v86 self-test run did not print SUMMARY within ${timeoutMs} ms`, collector.text())),
        timeoutMs,
      );
      collector.onSummary = () => {
        clearTimeout(timer);
        resolve();
      };
      emulator.add_listener("serial0-output-byte", (byte: number) => collector.push(byte));
    });
  } finally {
    await emulator.destroy();
  }
  return { output: collector.text(), seconds: (performance.now() - start) / 1000 };
}
