// Mirror of layout.h: the guest's fixed physical layout and hypercall numbers.
export const HC_CMD_PORT = 0x500;
export const HC_ARG_PORT = 0x504;

export const HC = {
  CODE_REWRITE: 1,
  PT_SWITCH: 2,
  PT_CHECK: 3,
  REP_REVOKE: 4,
  REP_CHECK: 5,
  LOCK_START: 6,
  LOCK_DONE: 7,
  DONE: 8,
  BENCH_START: 9,
  BENCH_STOP: 10,
  RESTART_ARM: 11,
  DESC_TAKE: 12,
} as const;

export const PAGE_DIR = 0x200000;
export const PAGE_TABLE = 0x201000;
export const PT_VIRT = 0x3ff000;
export const PT_X = 0x260000;
export const PT_Y = 0x261000;
export const COUNTER_PAGE = 0x220000;
export const NOISE_PAGE = 0x221000; // and the page after it
export const REP_SRC = 0x230000;
export const REP_DST = 0x240000;
export const REP_STOS = 0x250000;
export const REP_PAGES = 4;
export const STOS_VALUE = 0x5a5a5a5a;
export const LOCK_ITERATIONS = 20000;
export const BENCH_ITERATIONS = 50000;
/** What the host writes over pagefn's first bytes: mov eax, 0x600DC0DE; ret. */
export const PAGEFN_REWRITE = [0xb8, 0xde, 0xc0, 0x0d, 0x60, 0xc3];
export const PAGEFN_REWRITE_RESULT = 0x600dc0de;
export const DESC_GDT = 0x270000;
export const DESC_BASE_HI = 0x288000;
export const DESC_BASE_LO = 0x290000;
export const IO_PORT = 0x510;
export const IO_MMIO = 0xd0000000;
