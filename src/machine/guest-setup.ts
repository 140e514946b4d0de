// What a node boots, as bytes, and the v86 options and boot-time RAM writes each way of booting
// needs: the default Linux guest by SeaBIOS (one CPU), the same guest by our firmware (direct boot,
// tables for N CPUs), or a multiboot ELF (the SMP self-test). Environment-neutral: the Web Worker
// receives the bytes from the page, the worker_threads node reads them from disk; both call
// `guestSetup`.

import type { V86Options } from "v86";
import { planDirectBoot } from "./firmware/direct-boot.ts";
import { multibootTables } from "./firmware/multiboot.ts";
import { CPU_HOTPLUG_SCI_IRQ } from "./devices/cpu-hotplug-interface.ts";

/** The v86 options a node is given: everything but the wasm (the engine's) and `autostart` (the node starts the CPU). */
export type GuestV86Options = Omit<V86Options, "wasm_fn" | "wasm_path" | "autostart">;

/** A block written into guest RAM before the first instruction. */
export interface BootWrite {
  address: number;
  bytes: Uint8Array;
}

/**
 * What a node boots: the default guest by SeaBIOS (one vCPU) or by our firmware (N vCPUs), or a
 * multiboot ELF (the SMP self-test; node 0 writes the CPU tables, see firmware/multiboot.ts).
 */
export type NodeGuest =
  | { kind: "seabios"; bios: ArrayBuffer; vgaBios: ArrayBuffer; bzImage: ArrayBuffer; initrd: ArrayBuffer; cmdline: string; memoryMiB: number }
  | { kind: "firmware"; firmware: ArrayBuffer; bzImage: ArrayBuffer; initrd: ArrayBuffer; cmdline: string; memoryMiB: number }
  | {
      kind: "multiboot";
      elf: ArrayBuffer;
      cmdline: string;
      memoryMiB: number;
      /** MP and ACPI tables for every vCPU at 0xF0000, written by the first node (default true). */
      tables?: boolean;
    };

/** The default guest's SeaBIOS boot images. */
export interface SeabiosImages {
  bios: ArrayBuffer;
  vgaBios: ArrayBuffer;
  bzImage: ArrayBuffer;
  initrd: ArrayBuffer;
}

/** v86 options for the default Linux guest booted by SeaBIOS (one CPU). */
export function seabiosV86Options(images: SeabiosImages, cmdline: string, memoryMiB: number): GuestV86Options {
  return {
    bios: { buffer: images.bios },
    vga_bios: { buffer: images.vgaBios },
    bzimage: { buffer: images.bzImage },
    initrd: { buffer: images.initrd },
    cmdline,
    memory_size: memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  };
}

/** v86 options for our firmware (direct Linux boot, tables for N CPUs): the plan is written separately. */
export function firmwareV86Options(firmware: ArrayBuffer, memoryMiB: number): GuestV86Options {
  return {
    bios: { buffer: firmware },
    memory_size: memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    // v86 has a local APIC, an IOAPIC and ACPI PM registers only with `acpi` on
    acpi: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as GuestV86Options;
}

/** v86 options for a multiboot ELF (v86 loads it itself, no BIOS). */
export function multibootV86Options(g: { elf: ArrayBuffer; cmdline: string; memoryMiB: number }): GuestV86Options {
  return {
    multiboot: { buffer: g.elf },
    cmdline: g.cmdline,
    memory_size: g.memoryMiB << 20,
    vga_memory_size: 2 << 20,
    // the local APIC and IOAPIC exist in v86 only with acpi on
    acpi: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as GuestV86Options;
}

/**
 * The guest's v86 options (the same on every node), and what the first node (node 0, which owns
 * guest RAM at the start) writes into RAM before the first instruction; `cpus` is the VM's vCPU count.
 */
export function guestSetup(guest: NodeGuest, at: { first: boolean; cpus: number; possibleCpus?: number }): { v86: GuestV86Options; bootWrites?: BootWrite[] } {
  const { first, cpus, possibleCpus } = at;
  switch (guest.kind) {
    case "seabios":
      return { v86: seabiosV86Options(guest, guest.cmdline, guest.memoryMiB) };
    case "firmware": {
      const plan = { bzImage: new Uint8Array(guest.bzImage), initrd: new Uint8Array(guest.initrd), cmdline: guest.cmdline, memoryBytes: guest.memoryMiB << 20, platform: { cpus, ...(possibleCpus !== undefined ? { possibleCpus, sciIrq: CPU_HOTPLUG_SCI_IRQ } : {}) } };
      return { v86: firmwareV86Options(guest.firmware, guest.memoryMiB), bootWrites: first ? planDirectBoot(plan).writes : undefined };
    }
    case "multiboot":
      return { v86: multibootV86Options(guest), bootWrites: first && guest.tables !== false ? multibootTables(cpus) : undefined };
  }
}
