// What the instrumentation pass expects of the pinned v86 release wasm. Measured once on
// node_modules/v86/build/v86.wasm of v86 0.5.462; any change means re-auditing the pass.

export const EXPECTED = {
  v86Version: "0.5.462",
  inputSha256: "aa0d0e149d6b60063b85de4871e78505637ce92821e14a9f9802c4008ba2336e",
  /** `addr >= memory_size` comparisons (inlined `in_mapped_range`) outside the TLB-fill test. */
  genericSites: 344,
  /** `addr < memory_size` comparisons outside do_page_walk, per function. */
  inverseSites: {
    _RNvNtNtCslOG1uufA09K_3v863cpu3cpu13safe_write128: 1,
    cmpsb_repnz: 1,
    cmpsb_repz: 1,
    cmpsd_repnz: 1,
    cmpsd_repz: 1,
    cmpsw_repnz: 1,
    cmpsw_repz: 1,
    movsb_rep: 1,
    movsd_rep: 1,
    movsw_rep: 1,
  } as Record<string, number>,
  /** Other loads of memory_size: cmps{w,d}_rep{z,nz} keep it in a local for the source check (TLB-translated, see pass.ts). */
  otherMemorySizeLoads: 4,
  /** Sites inside do_page_walk: page-directory/table reads and A/D writes, then the TLB-fill site. */
  pageWalkSites: 4,
  doPageWalk: "_RNvNtNtCslOG1uufA09K_3v863cpu3cpu12do_page_walk",
  /** call_interrupt_vector(vector, is_software, error-code tag, error code): delivers interrupts and exceptions. */
  callInterruptVector: "_RNvNtNtCslOG1uufA09K_3v863cpu3cpu21call_interrupt_vector",
  /** Exports the engine runtime calls. */
  exports: ["memory", "rust_init", "allocate_memory", "full_clear_tlb", "jit_dirty_cache", "main_loop", "handle_irqs", "reset_cpu"],
} as const;

/** Bump when the rewrite in pass.ts changes, so cached outputs are rebuilt. */
export const PASS_VERSION = 9;

/** Bump when audit-pass.ts changes. */
export const AUDIT_PASS_VERSION = 1;
