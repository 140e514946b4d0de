/* The engine test guest: one scenario per boot, chosen by the multiboot command line. Each
 * scenario asks the host (the test) to change page ownership through a hypercall port, then
 * checks what it sees; the host checks the other side. Output goes to COM1. */
#include <stdint.h>
#include "layout.h"
#include "../common/guest.h"

static void report(const char *what, uint32_t got, uint32_t want) {
  puts_(what); puts_(" got="); puthex(got); puts_(" want="); puthex(want); puts_(got == want ? " ok\n" : " FAIL\n");
}
static int failures;
static void check(const char *what, uint32_t got, uint32_t want) { report(what, got, want); if (got != want) failures++; }

static volatile uint32_t *const P32(uint32_t a) { return (volatile uint32_t *)a; }

static void paging_on(void) {
  volatile uint32_t *pd = P32(PAGE_DIR), *pt = P32(PAGE_TABLE);
  for (int i = 0; i < 1024; i++) { pd[i] = 0; pt[i] = ((uint32_t)i << 12) | 3; }
  pt[(PT_VIRT >> 12) & 1023] = PT_X | 3;
  pd[0] = PAGE_TABLE | 3;
  __asm__ volatile("mov %0,%%cr3; mov %%cr0,%%eax; or $0x80000000,%%eax; mov %%eax,%%cr0" ::"r"(PAGE_DIR) : "eax", "memory");
}

/* Alone on its page (.pagecode); the host rewrites its first bytes while the page is away. */
__attribute__((section(".pagecode"), noipa)) int pagefn(int x) { return x + 1; }

static void scenario_code(void) {
  uint32_t sum = 0;
  for (int i = 0; i < 200000; i++) sum += pagefn(i); /* hot enough for v86's JIT */
  check("code before", sum, (uint32_t)(200000ull * 200001ull / 2));
  hc(HC_CODE_REWRITE, (uint32_t)(uintptr_t)pagefn);
  sum = 0;
  for (int i = 0; i < 1000; i++) sum += pagefn(i);
  check("code after", sum, 1000u * 0x600DC0DEu);
}

static void scenario_pt(void) {
  *P32(PT_X) = 0x11111111; *P32(PT_Y) = 0x22222222;
  check("pt before", *P32(PT_VIRT), 0x11111111);
  hc(HC_PT_SWITCH, PT_VIRT);
  __asm__ volatile("invlpg (%0)" ::"r"(PT_VIRT) : "memory");
  check("pt after", *P32(PT_VIRT), 0x22222222);
  *P32(PT_VIRT) = 0x33333333; /* sets the dirty bit in the revoked page table */
  check("pt write", *P32(PT_VIRT), 0x33333333);
  hc(HC_PT_CHECK, 0);
}

static void scenario_rep(void) {
  uint32_t n = REP_PAGES * 1024;
  for (uint32_t i = 0; i < n; i++) { P32(REP_SRC)[i] = 0; P32(REP_DST)[i] = 0xAAAAAAAA; P32(REP_STOS)[i] = 0; }
  hc(HC_REP_REVOKE, 0);
  uint32_t s = REP_SRC, d = REP_DST, c = n;
  __asm__ volatile("cld; rep movsl" : "+S"(s), "+D"(d), "+c"(c) : : "memory");
  d = REP_STOS; c = n;
  __asm__ volatile("cld; rep stosl" : "+D"(d), "+c"(c) : "a"(STOS_VALUE) : "memory");
  uint32_t sum = 0;
  for (uint32_t i = 0; i < n; i++) sum += P32(REP_DST)[i];
  check("rep dst sum", sum, hc(HC_REP_CHECK, sum));
}

static void lock_loop(uint32_t iterations) {
  volatile uint32_t *c = P32(COUNTER_PAGE);
  for (uint32_t i = 0; i < iterations; i++) {
    uint32_t one = 1;
    __asm__ volatile("lock xaddl %0,%1" : "+r"(one), "+m"(c[0]) : : "memory");
    uint32_t old = c[16], seen;
    do { seen = old; __asm__ volatile("lock cmpxchgl %2,%1" : "=a"(old), "+m"(c[16]) : "r"(seen + 1), "0"(seen) : "memory"); } while (old != seen);
    __asm__ volatile("lock incl %0" : "+m"(c[32]) : : "memory");
    *P32(NOISE_PAGE + ((i & 1) << 12)) = i; /* two noise pages, revoked alternately by the host */
  }
}

static void scenario_lock(void) {
  volatile uint32_t *c = P32(COUNTER_PAGE);
  c[0] = c[16] = c[32] = 0;
  hc(HC_LOCK_START, 0);
  lock_loop(LOCK_ITERATIONS);
  hc(HC_LOCK_DONE, LOCK_ITERATIONS);
}

/* Several guests, one per vCPU, share the counter and noise pages through the host's DSM; the
 * counters start at zero because guest RAM does. The host's LOCK_START answer is the iteration count. */
static void scenario_lockshared(void) {
  uint32_t n = hc(HC_LOCK_START, 0); /* the host answers when every vCPU got here, with the count */
  lock_loop(n);
  hc(HC_LOCK_DONE, n);
}

/* One rep movsd whose source faults while the host takes the destination away: v86 translated
 * the destination first, so the instruction must start over rather than copy into the stale page. */
static void scenario_restart(void) {
  for (uint32_t i = 0; i < 1024; i++) { P32(REP_SRC)[i] = 0; P32(REP_DST)[i] = 0xAAAAAAAA; }
  hc(HC_RESTART_ARM, 0);
  uint32_t s = REP_SRC, d = REP_DST, c = 1024;
  __asm__ volatile("cld; rep movsl" : "+S"(s), "+D"(d), "+c"(c) : : "memory");
  uint32_t sum = 0;
  for (uint32_t i = 0; i < 1024; i++) sum += P32(REP_DST)[i];
  check("restart dst sum", sum, hc(HC_REP_CHECK, sum));
}

/* Segment descriptors read from a GDT page the node holds read-only, then not at all: v86 reads
 * them by physical address (read64s), which the map turns into its MMIO path. Selector 0x20 has a
 * base with bit 15 set (bit 31 of the descriptor's low dword), 0x28 one without. */
static uint32_t desc_word(uint32_t base) { return (base << 16) | 0xFFFF; }
static uint32_t desc_high(uint32_t base) { return (base & 0xFF000000u) | 0x00CF9300u | ((base >> 16) & 0xFF); /* accessed already: no write */ }
static uint32_t fs_read(uint16_t sel) {
  uint32_t v;
  __asm__ volatile("mov %1,%%fs; movl %%fs:0,%0" : "=r"(v) : "r"(sel) : "memory");
  return v;
}
static void scenario_desc(void) {
  struct __attribute__((packed)) { uint16_t limit; uint32_t base; } gdtr;
  __asm__ volatile("sgdt %0" : "=m"(gdtr));
  volatile uint32_t *gdt = P32(DESC_GDT);
  for (int i = 0; i < 1024; i++) gdt[i] = 0;
  /* Copy the boot GDT (null, code 0x08, data 0x10), so CS and the data selectors stay valid. */
  for (int i = 0; i < 6; i++) gdt[i] = ((volatile uint32_t *)gdtr.base)[i];
  gdt[8] = desc_word(DESC_BASE_HI); gdt[9] = desc_high(DESC_BASE_HI);
  gdt[10] = desc_word(DESC_BASE_LO); gdt[11] = desc_high(DESC_BASE_LO);
  *P32(DESC_BASE_HI) = 0x48494748u; *P32(DESC_BASE_LO) = 0x4C4F4C4Fu;
  gdtr.base = DESC_GDT; gdtr.limit = 12 * 8 - 1;
  __asm__ volatile("lgdt %0" : : "m"(gdtr));
  check("desc rw hi", fs_read(0x20), 0x48494748u);
  check("desc rw lo", fs_read(0x28), 0x4C4F4C4Fu);
  hc(HC_DESC_TAKE, 1);
  check("desc ro hi", fs_read(0x20), 0x48494748u);
  check("desc ro lo", fs_read(0x28), 0x4C4F4C4Fu);
  hc(HC_DESC_TAKE, 2);
  check("desc none hi", fs_read(0x20), 0x48494748u);
  hc(HC_DESC_TAKE, 2);
  check("desc none lo", fs_read(0x28), 0x4C4F4C4Fu);
  __asm__ volatile("mov %0,%%fs" : : "r"(0x10) : "memory");
}

/* Two pages written alternately; the host may take the other one away on each fault. */
static void scenario_faultbench(void) {
  hc(HC_BENCH_START, 0);
  for (uint32_t i = 0; i < BENCH_ITERATIONS; i++) *P32(NOISE_PAGE + ((i & 1) << 12)) = i;
  hc(HC_BENCH_STOP, BENCH_ITERATIONS);
}

/* Ports and MMIO the host routes to its own handler (no v86 device answers there). Runs with
 * paging off: the MMIO window is outside the identity-mapped 4 MiB. */
static void scenario_io(void) {
  outb(IO_PORT, 0x12);
  outw(IO_PORT + 2, 0x3456);
  outl(IO_PORT + 4, 0x789ABCDE);
  check("io inb", inb(IO_PORT), 0xA5);
  check("io inw", inw(IO_PORT + 2), 0xBEEF);
  check("io inl", inl(IO_PORT + 4), 0xDEADBEEF);
  *P32(IO_MMIO + 0x10) = 0xCAFEBABE;
  *(volatile uint8_t *)(IO_MMIO + 0x20) = 0x77;
  check("mmio read32", *P32(IO_MMIO + 0x40), 0x600DF00D);
  check("mmio read8", *(volatile uint8_t *)(IO_MMIO + 0x41), 0x5A);
}

void main(uint32_t magic, uint32_t *info) {
  const char *cmd = (magic == 0x2BADB002 && (info[0] & 4)) ? (const char *)info[4] : "";
  puts_("enginetest magic="); puthex(magic); puts_(" flags="); puthex(info[0]); putc_(32); puts_(cmd); putc_(10);
  if (streq(cmd, "io")) {
    scenario_io();
    puts_(failures ? "RESULT FAIL\n" : "RESULT OK\n");
    hc(HC_DONE, failures);
    return;
  }
  paging_on();
  if (streq(cmd, "code")) scenario_code();
  else if (streq(cmd, "pt")) scenario_pt();
  else if (streq(cmd, "rep")) scenario_rep();
  else if (streq(cmd, "lock")) scenario_lock();
  else if (streq(cmd, "faultbench")) scenario_faultbench();
  else if (streq(cmd, "lockshared")) scenario_lockshared();
  else if (streq(cmd, "restart")) scenario_restart();
  else if (streq(cmd, "desc")) scenario_desc();
  else { puts_("unknown scenario\n"); failures++; }
  puts_(failures ? "RESULT FAIL\n" : "RESULT OK\n");
  hc(HC_DONE, failures);
}
