// The contract between the instrumentation pass (build time) and the engine runtime.
// Both sides import these names so a rename cannot silently break one of them.

/** Import the instrumented module calls when a TLB fill lands on a RAM page the node may not use. */
export const IMPORT_TLB_FAULT = "gw_tlb_fault";
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
