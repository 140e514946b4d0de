// Where the direct boot puts things in guest-physical memory. The firmware-side numbers
// (image, tables, handoff block) must equal guests/firmware/layout.h; a unit test compares them.

export const FW_IMAGE_BASE = 0xe0000;
export const FW_IMAGE_SIZE = 0x20000;
/** MP floating pointer and ACPI RSDP must lie in 0xF0000-0xFFFFF for Linux's scans to find them. */
export const FW_TABLES_BASE = 0xf0000;
export const FW_TABLES_END = 0xfe000;
export const FW_HANDOFF_ADDR = 0xfe000;
export const FW_CODE_BASE = 0xff000;
export const FW_HANDOFF_MAGIC = 0x48425747; // "GWBH"
export const FW_HANDOFF_VERSION = 1;
export const FW_HANDOFF_SIZE = 24;

/** BIOS data area fields Linux reads even on a direct boot (EBDA segment, base memory in KiB). */
export const BDA_EBDA_SEGMENT = 0x40e;
export const BDA_BASE_MEMORY_KIB = 0x413;
/** A 1 KiB extended BIOS data area at the top of conventional memory, as on a PC. */
export const EBDA_BASE = 0x9fc00;
export const CONVENTIONAL_END = 0xa0000;

export const BOOT_PARAMS_ADDR = 0x10000;
export const CMDLINE_ADDR = 0x20000;
/** The bzImage's protected-mode part is loaded here; the 32-bit entry is its first byte. */
export const KERNEL_LOAD_ADDR = 0x100000;

export const LAPIC_ADDR = 0xfee00000;
export const IOAPIC_ADDR = 0xfec00000;
/** v86 mirrors the first MiB (BIOS included) at 0xFFF00000, where a PC's boot flash sits. */
export const HIGH_BIOS_BASE = 0xfff00000;
