// The BIOS e820 memory map a PC firmware would report for v86's memory layout: RAM below the
// EBDA and from 1 MiB to the end of guest RAM, everything firmware or MMIO reserved.

import { check } from "./errors.ts";
import { CONVENTIONAL_END, EBDA_BASE, FW_IMAGE_BASE, HIGH_BIOS_BASE, IOAPIC_ADDR, KERNEL_LOAD_ADDR, LAPIC_ADDR } from "./layout.ts";

export const E820 = { RAM: 1, RESERVED: 2, ACPI: 3, NVS: 4, UNUSABLE: 5 } as const;
export type E820Type = (typeof E820)[keyof typeof E820];

export interface E820Entry {
  address: number;
  size: number;
  type: E820Type;
}

/** Linux's boot_params holds at most 128 entries. */
export const E820_MAX_ENTRIES = 128;
export const E820_ENTRY_SIZE = 20;
/** RAM must end below the IOAPIC; v86 has no memory above 4 GiB and we model no PCI hole. */
export const MAX_MEMORY = 0xc0000000;
export const MIN_MEMORY = 16 * 1024 * 1024;

export function buildE820(memoryBytes: number): E820Entry[] {
  check(
    Number.isInteger(memoryBytes) && memoryBytes >= MIN_MEMORY && memoryBytes <= MAX_MEMORY && memoryBytes % 4096 === 0,
    `guest memory must be a multiple of 4 KiB from ${MIN_MEMORY} to ${MAX_MEMORY} bytes, got ${memoryBytes}`,
  );
  const map: E820Entry[] = [
    { address: 0, size: EBDA_BASE, type: E820.RAM },
    { address: EBDA_BASE, size: CONVENTIONAL_END - EBDA_BASE, type: E820.RESERVED },
    // 0xA0000-0xDFFFF is VGA memory and option-ROM space: not RAM, and not listed (a PC leaves a hole)
    { address: FW_IMAGE_BASE, size: KERNEL_LOAD_ADDR - FW_IMAGE_BASE, type: E820.RESERVED },
    { address: KERNEL_LOAD_ADDR, size: memoryBytes - KERNEL_LOAD_ADDR, type: E820.RAM },
    { address: IOAPIC_ADDR, size: 0x1000, type: E820.RESERVED },
    { address: LAPIC_ADDR, size: 0x1000, type: E820.RESERVED },
    { address: HIGH_BIOS_BASE, size: 0x100000000 - HIGH_BIOS_BASE, type: E820.RESERVED },
  ];
  checkE820(map);
  return map;
}

/** Sorted, non-overlapping, non-empty, below 4 GiB, at most 128 entries. */
export function checkE820(map: E820Entry[]): void {
  check(map.length >= 1 && map.length <= E820_MAX_ENTRIES, `an e820 map has 1 to ${E820_MAX_ENTRIES} entries, got ${map.length}`);
  let end = 0;
  for (const e of map) {
    check(e.size > 0, `e820 entry at 0x${e.address.toString(16)} is empty`);
    check(e.address >= end, `e820 entry at 0x${e.address.toString(16)} overlaps or is out of order`);
    end = e.address + e.size;
    check(end <= 0x100000000, `e820 entry at 0x${e.address.toString(16)} ends above 4 GiB`);
  }
}
