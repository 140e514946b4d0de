// What a node of a NodeCluster (worker_threads) boots, as files on disk: each worker reads them into
// the bytes every node boots from (machine/guest-setup.ts's NodeGuest).

import { readFileSync } from "node:fs";
import type { NodeGuest } from "../../machine/guest-setup.ts";

/** A file's bytes as a standalone ArrayBuffer (v86 keeps the buffers it is given). */
export function readArrayBuffer(path: string): ArrayBuffer {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

export type GuestFiles =
  /** The default guest booted by SeaBIOS (one vCPU). */
  | { kind: "linux"; bios: string; vgaBios: string; bzImage: string; initramfs: string; cmdline: string; memoryMiB: number }
  /** The default guest booted directly by our firmware, with tables for every vCPU. */
  | { kind: "linux-smp"; firmware: string; bzImage: string; initramfs: string; cmdline: string; memoryMiB: number }
  /** A multiboot guest (the self-test); `smp` adds MP and ACPI tables for every vCPU at 0xF0000. */
  | { kind: "multiboot"; elf: string; cmdline: string; memoryMiB: number; smp?: boolean };

/** Reads the guest's files. */
export function readGuestFiles(g: GuestFiles): NodeGuest {
  switch (g.kind) {
    case "linux":
      return { kind: "seabios", bios: readArrayBuffer(g.bios), vgaBios: readArrayBuffer(g.vgaBios), bzImage: readArrayBuffer(g.bzImage), initrd: readArrayBuffer(g.initramfs), cmdline: g.cmdline, memoryMiB: g.memoryMiB };
    case "linux-smp":
      return { kind: "firmware", firmware: readArrayBuffer(g.firmware), bzImage: readArrayBuffer(g.bzImage), initrd: readArrayBuffer(g.initramfs), cmdline: g.cmdline, memoryMiB: g.memoryMiB };
    case "multiboot":
      return { kind: "multiboot", elf: readArrayBuffer(g.elf), cmdline: g.cmdline, memoryMiB: g.memoryMiB, tables: g.smp === true };
  }
}
