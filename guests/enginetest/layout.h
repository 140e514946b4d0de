/* Fixed physical layout and hypercall numbers, mirrored in layout.ts (keep the two in step). */
#define HC_CMD_PORT 0x500
#define HC_ARG_PORT 0x504

#define HC_CODE_REWRITE 1  /* arg: address of pagefn; host revokes its page and rewrites it remotely */
#define HC_PT_SWITCH 2     /* arg: virtual address V; host revokes the page table, remaps V remotely */
#define HC_PT_CHECK 3      /* host revokes the page table again and checks the accessed/dirty bits */
#define HC_REP_REVOKE 4    /* host revokes the rep buffers and fills the source remotely */
#define HC_REP_CHECK 5     /* host revokes the buffers and checks their contents */
#define HC_LOCK_START 6    /* host starts revoking the counter page at random points */
#define HC_LOCK_DONE 7     /* arg: iterations; host stops and checks the counters */
#define HC_DONE 8          /* arg: 0 ok, else failure code */
#define HC_BENCH_START 9   /* faultbench: host starts its clock */
#define HC_BENCH_STOP 10   /* faultbench: arg: iterations */
#define HC_RESTART_ARM 11  /* restart: host revokes the source; its fault will take the destination */
#define HC_DESC_TAKE 12    /* arg: 1 read-only, 2 no access; host takes the GDT page away that far */

#define PAGE_DIR 0x200000
#define PAGE_TABLE 0x201000   /* maps 0-4 MiB, identity except PT_VIRT */
#define PT_VIRT 0x3FF000
#define PT_X 0x260000
#define PT_Y 0x261000
#define COUNTER_PAGE 0x220000
#define NOISE_PAGE 0x221000 /* and 0x222000 */
#define REP_SRC 0x230000
#define REP_DST 0x240000
#define REP_STOS 0x250000
#define REP_PAGES 4
#define STOS_VALUE 0x5A5A5A5Au
#define LOCK_ITERATIONS 20000
#define BENCH_ITERATIONS 50000
#define DESC_GDT 0x270000   /* a GDT alone on its page */
#define DESC_BASE_HI 0x288000 /* a data segment base with bit 15 set */
#define DESC_BASE_LO 0x290000 /* and one with bit 15 clear */
#define IO_PORT 0x510          /* 0x510..0x517: routed ports */
#define IO_MMIO 0xD0000000u    /* 128 KiB routed MMIO window */
