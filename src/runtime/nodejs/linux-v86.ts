// v86 options that boot the default Linux guest (SeaBIOS, Debian's kernel, our initramfs; see
// src/guests/images.ts) with its console on the serial port, read from .cache/guest. Node only. Shared by the
// Node tests and benchmarks that boot it on stock v86, on one engine vCPU or on several. The
// options are the machine's (seabiosV86Options, machine/guest-setup.ts), as a VM node gets them.

import type { V86Options } from "v86";
import { ensureGuestImages, type GuestImages } from "../../guests/images.ts";
import { seabiosV86Options } from "../../machine/guest-setup.ts";
import { readArrayBuffer } from "./guest-files.ts";

export { readArrayBuffer };

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
  const images = { bios: readArrayBuffer(paths.bios), vgaBios: readArrayBuffer(paths.vgaBios), bzImage: readArrayBuffer(paths.bzImage), initrd: readArrayBuffer(paths.initramfs) };
  return {
    ...seabiosV86Options(images, paths.cmdline, memoryMiB),
    // left out unless asked for, exactly as a stock configuration
    ...(options.acpi ? { acpi: true } : {}),
    autostart: options.autostart ?? false,
  };
}
