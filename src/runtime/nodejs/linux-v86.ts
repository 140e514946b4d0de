// v86 options that boot the default Linux guest (SeaBIOS, Debian's kernel, our initramfs; see
// src/guests/images.ts) with its console on the serial port, read from .cache/guest. Node only. Shared by the
// Node tests and benchmarks that boot it on stock v86, on one engine vCPU or on several.

import { readFileSync } from "node:fs";
import type { V86Options } from "v86";
import { ensureGuestImages, type GuestImages } from "../../guests/images.ts";

/** A file's bytes as a standalone ArrayBuffer (v86 keeps the buffers it is given). */
export function readArrayBuffer(path: string): ArrayBuffer {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

export interface LinuxV86Options {
  /** Guest RAM (default 128 MiB). */
  memoryMiB?: number;
  /** v86's ACPI, and with it the local APIC and IOAPIC (default off, as in stock v86). */
  acpi?: boolean;
  /** Start the CPU when loaded (default false: the caller starts it with run()). */
  autostart?: boolean;
  /** Where image building reports progress (default: stderr, see ensureGuestImages). */
  log?: (line: string) => void;
  /** Another guest's files (the kernel matrix's); default: the default guest in .cache/guest. */
  images?: GuestImages;
}

/** Everything but the wasm: the caller (stock v86 or the engine) owns `wasm_fn`. */
export function linuxV86Options(options: LinuxV86Options = {}): Omit<V86Options, "wasm_fn" | "wasm_path"> {
  const memoryMiB = options.memoryMiB ?? 128;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 16) throw new Error(`memoryMiB must be an integer >= 16, got ${memoryMiB}`);
  const paths = options.images ?? (options.log ? ensureGuestImages(options.log) : ensureGuestImages());
  return {
    bios: { buffer: readArrayBuffer(paths.bios) },
    vga_bios: { buffer: readArrayBuffer(paths.vgaBios) },
    bzimage: { buffer: readArrayBuffer(paths.bzImage) },
    initrd: { buffer: readArrayBuffer(paths.initramfs) },
    cmdline: paths.cmdline,
    // left out unless asked for, exactly as a stock configuration
    ...(options.acpi ? { acpi: true } : {}),
    memory_size: memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    autostart: options.autostart ?? false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  };
}
