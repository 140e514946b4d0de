// The contract between the instrumentation pass (build time) and the engine runtime.
// Both sides import these names so a rename cannot silently break one of them.

/**
 * Import the instrumented module calls when a TLB fill lands on a RAM page the node may not use:
 * (virtual address, TLB entry, for_writing, side_effects) -> TLB_KEEP | TLB_RETRY | TLB_FAIL.
 */
export const IMPORT_TLB_FAULT = "gw_tlb_fault";
/**
 * Exported mutable i32 global, non-zero while v86 walks page tables without side effects (its JIT
 * analysing code, with the JIT's state lock held): calls into the JIT must be deferred then.
 */
export const EXPORT_QUIET = "gw_quiet";
/**
 * Exported mutable i32 global: the engine sets it when it revoked a page while v86 was inside a
 * hook (in the middle of an instruction). The next TLB fill with side effects then abandons the
 * current instruction so it re-executes from its start (see instrument/pass.ts).
 */
export const EXPORT_RESTART = "gw_restart";
/**
 * Exported mutable i32 global, non-zero while v86 walks page tables with side effects. Byte
 * writes to RAM then are accessed/dirty updates of a PTE or PDE (v86 writes the entry's low byte).
 */
export const EXPORT_WALKING = "gw_walking";
/** The accessed and dirty bits of a page-table entry's low byte. */
export const PTE_ACCESSED_DIRTY = 0x60;
/** Verdicts of the gw_tlb_fault import. */
export const TLB_KEEP = 0;
export const TLB_RETRY = 1;
export const TLB_FAIL = 2;
/** Export that tells the instrumented module where the per-page byte map lives in linear memory. */
export const EXPORT_SET_MAP_BASE = "gw_set_map_base";
/** Export that reports the map base, so tests can check the setter really took effect. */
export const EXPORT_GET_MAP_BASE = "gw_get_map_base";

/** Linear-memory address of v86's `memory_size` global (bytes of guest RAM). */
export const MEMORY_SIZE_ADDR = 812;

/** Per-page byte map values. The map covers the whole 32-bit physical space (2^20 pages). */
export const PAGE_RW = 0;
export const PAGE_RO = 1;
export const PAGE_NONE = 2;
export const MAP_BYTES = 1 << 20;

/** v86 TLB entry flag bits (src/rust/cpu/cpu.rs). */
export const TLB_VALID = 1 << 0;
export const TLB_READONLY = 1 << 1;
export const TLB_IN_MAPPED_RANGE = 1 << 3;
/**
 * The coherence audit (instrument/audit-pass.ts, debug builds only): the import each forbidden
 * guest-RAM access calls, (guest-physical address, bytes | write << 8, site) -> (), and the export
 * that arms it with the linear address of guest RAM (0 disarms).
 */
export const IMPORT_AUDIT = "gw_audit";
export const EXPORT_AUDIT_SET_RAM = "gw_audit_set_ram";
