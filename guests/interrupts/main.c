/* The interrupts guest: one scenario per boot, chosen by the multiboot command line. It reads its
 * APIC ID, sends IPIs, takes injected interrupts, programs the IOAPIC and reads the PIC, printing
 * what it sees on COM1 and reporting to the host (the test) through hypercall ports. */
#include <stdint.h>
#include "layout.h"
#include "../common/guest.h"

static int failures;
static void check(const char *what, uint32_t got, uint32_t want) {
  puts_(what); puts_(" got=0x"); puthex(got); puts_(" want=0x"); puthex(want); puts_(got == want ? " ok\n" : " FAIL\n");
  if (got != want) failures++;
}
static void show(const char *what, uint32_t v) { puts_(what); puts_("=0x"); puthex(v); puts_("\n"); }

#define APIC 0xFEE00000u
#define IOAPIC 0xFEC00000u
static volatile uint32_t *reg(uint32_t a) { return (volatile uint32_t *)a; }
static uint32_t apic_read(uint32_t off) { return *reg(APIC + off); }
static void apic_write(uint32_t off, uint32_t v) { *reg(APIC + off) = v; }
static void ioapic_write(uint32_t r, uint32_t v) { *reg(IOAPIC) = r; *reg(IOAPIC + 0x10) = v; }
static uint32_t ioapic_read(uint32_t r) { *reg(IOAPIC) = r; return *reg(IOAPIC + 0x10); }

static void send_ipi(uint32_t dest, uint32_t low) {
  apic_write(0x310, dest << 24);
  apic_write(0x300, low);
}

/* ---- interrupts ---- */
static volatile uint32_t count[NVEC];
extern char isr_stubs[];
static uint64_t idt[NVEC];
static struct __attribute__((packed)) { uint16_t limit; uint32_t base; } idt_desc;

void isr(uint32_t v) {
  count[v & 0xff]++;
  if (v != 2) apic_write(0xB0, 0); /* EOI (for NMI there is none) */
}

static void idt_init(void) {
  for (int v = 0; v < NVEC; v++) {
    uint32_t a = (uint32_t)(uintptr_t)(isr_stubs + 16 * v);
    idt[v] = (a & 0xFFFF) | (0x08u << 16) | ((uint64_t)0x8E00 << 32) | ((uint64_t)(a >> 16) << 48);
  }
  idt_desc.limit = sizeof(idt) - 1;
  idt_desc.base = (uint32_t)(uintptr_t)idt;
  __asm__ volatile("lidt %0" ::"m"(idt_desc));
  outb(0x21, 0xFF); /* mask the 8259s: only the APIC delivers here */
  outb(0xA1, 0xFF);
  apic_write(0xF0, 0x1FF); /* software-enable the APIC, spurious vector 0xFF */
}

static void spin(void) { for (volatile int i = 0; i < 20000; i++) {} }

static void cpuid1(uint32_t *ebx) {
  uint32_t a = 1, b, c = 0, d;
  __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
  *ebx = b;
}

/* ---- scenarios ---- */
static void scenario_apicid(void) {
  uint32_t ebx;
  cpuid1(&ebx);
  show("apic.id", apic_read(0x20) >> 24);
  show("cpuid.apic", ebx >> 24);
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0x1B));
  show("msr.bsp", (lo >> 8) & 1);
  show("msr.en", (lo >> 11) & 1);
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  show("tsc.hi", hi);
  hc(HC_DONE, failures);
}

static void scenario_ipi(void) {
  idt_init();
  __asm__ volatile("sti");
  /* step 1: fixed IPI to APIC 1 (physical), a self IPI, NMI/INIT/INIT-deassert/SIPI to APIC 1 */
  send_ipi(1, 0x4000 | V_REMOTE);
  send_ipi(0, (1 << 18) | V_SELF);
  send_ipi(1, 0x4400);                  /* NMI */
  send_ipi(1, 0x4500);                  /* INIT, assert */
  send_ipi(1, 0x8500);                  /* INIT de-assert: level trigger, level bit clear */
  send_ipi(1, 0x4600 | 0x09);           /* SIPI, start page 9 */
  spin();
  check("ipi.remote.here", count[V_REMOTE], 0);
  check("ipi.self", count[V_SELF], 1);
  hc(HC_SENT, 1);
  /* step 2: logical (flat) destinations: this CPU's LDR is bit 0 */
  apic_write(0xE0, 0xFFFFFFFF);
  apic_write(0xD0, 0x01000000);
  send_ipi(0x02, 0x4800 | V_LOGICAL);   /* logical, mask 0x02: someone else */
  spin();
  check("ipi.logical.other", count[V_LOGICAL], 0);
  send_ipi(0x03, 0x4800 | V_LOGICAL);   /* mask 0x03 includes this CPU */
  spin();
  check("ipi.logical.self", count[V_LOGICAL], 1);
  send_ipi(0, (3 << 18) | 0x4000 | V_REMOTE); /* all but self */
  spin();
  check("ipi.allbutself.here", count[V_REMOTE], 0);
  hc(HC_SENT, 2);
  hc(HC_DONE, failures);
}

extern char state_entry[];
static void scenario_inject(void) {
  idt_init();
  __asm__ volatile("sti");
  hc(HC_READY, (uint32_t)(uintptr_t)state_entry);
  /* The host injects V_INJECT (edge), V_LEVEL (level) and an NMI, then answers POLL with 1. */
  while (!hc(HC_POLL, 0)) __asm__ volatile("hlt");
  spin();
  check("inject.edge", count[V_INJECT], 1);
  check("inject.level", count[V_LEVEL], 1);
  check("inject.nmi", count[2], 1);
  hc(HC_DONE, failures);
}

static void scenario_ioapic(void) {
  idt_init();
  __asm__ volatile("sti");
  show("ioapic.version", ioapic_read(1));
  /* input IOAPIC_IRQ: level, active high, physical destination APIC 1 (not this CPU) */
  ioapic_write(0x10 + 2 * IOAPIC_IRQ + 1, 1u << 24);
  ioapic_write(0x10 + 2 * IOAPIC_IRQ, 0x8000 | V_IOAPIC);
  hc(HC_SENT, 1); /* the host raises the input */
  spin();
  check("ioapic.remote.here", count[V_IOAPIC], 0);
  /* to this CPU (APIC 0); the entry's remote IRR is still set from the first send, which only
   * the EOI clears, so the host sends that EOI (as the remote CPU would) and then re-raises */
  ioapic_write(0x10 + 2 * IOAPIC_IRQ + 1, 0);
  hc(HC_SENT, 2);
  spin();
  check("ioapic.local", count[V_IOAPIC] >= 1, 1);
  hc(HC_DONE, failures);
}

static void scenario_route(void) {
  show("routed.ioapic.version", ioapic_read(1));
  ioapic_write(0x10 + 2 * 5, 0x1234);
  show("routed.pic.imr", inb(0x21));
  outb(0xA1, 0x77);
  hc(HC_DONE, failures);
}

static void scenario_state(void) {
  hc(HC_READY, (uint32_t)(uintptr_t)state_entry);
  for (;;) hc(HC_POLL, 0); /* the host pauses here and moves EIP to state_entry */
}

void report_regs(uint32_t a, uint32_t b, uint32_t c, uint32_t d, uint32_t si, uint32_t di) {
  outl(HC_ARG_PORT, a); outl(HC_ARG_PORT, b); outl(HC_ARG_PORT, c);
  outl(HC_ARG_PORT, d); outl(HC_ARG_PORT, si); outl(HC_ARG_PORT, di);
  outl(HC_CMD_PORT, HC_REGS);
}

/* IPI_BENCH self IPIs through the ICR (physical destination = own ID), each taken and EOI'd. */
static void scenario_ipibench(void) {
  idt_init();
  __asm__ volatile("sti");
  uint32_t id = apic_read(0x20) >> 24;
  hc(HC_SENT, 0);
  for (uint32_t i = 1; i <= IPI_BENCH; i++) {
    send_ipi(id, 0x4000 | V_SELF);
    while (count[V_SELF] != i) {}
  }
  hc(HC_SENT, 1);
  check("ipibench.count", count[V_SELF], IPI_BENCH);
  hc(HC_DONE, failures);
}

/* TSC_SPIN: a loop that reads the TSC and nothing else, like a delay loop or a wait with a timeout. */
static void scenario_tscspin(void) {
  uint32_t lo, hi, sum = 0;
  for (uint32_t i = 0; i < 200000; i++) {
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    sum += lo;
  }
  show("tscspin.done", sum != 0);
  hc(HC_DONE, failures);
}

/* TSC_WORK: reads the TSC between stretches of work (tens of µs each): a guest that keeps time, not one that spins. */
static void scenario_tscwork(void) {
  uint32_t lo, hi, sum = 0;
  for (uint32_t i = 0; i < 200; i++) {
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    sum += lo;
    for (uint32_t k = 0; k < 20000; k++) sum = sum * 1664525u + 1013904223u;
  }
  show("tscwork.done", sum != 0);
  hc(HC_DONE, failures);
}

struct mbi { uint32_t flags, mem_lower, mem_upper, boot_device, cmdline; };

void main(uint32_t magic, struct mbi *mbi) {
  const char *cmd = (magic == 0x2BADB002 && (mbi->flags & 4)) ? (const char *)(uintptr_t)mbi->cmdline : "";
  puts_("interrupts guest: "); puts_(cmd); puts_("\n");
  if (streq(cmd, "apicid")) scenario_apicid();
  else if (streq(cmd, "ipi")) scenario_ipi();
  else if (streq(cmd, "inject")) scenario_inject();
  else if (streq(cmd, "ioapic")) scenario_ioapic();
  else if (streq(cmd, "route")) scenario_route();
  else if (streq(cmd, "state")) scenario_state();
  else if (streq(cmd, "ipibench")) scenario_ipibench();
  else if (streq(cmd, "tscspin")) scenario_tscspin();
  else if (streq(cmd, "tscwork")) scenario_tscwork();
  else { puts_("unknown scenario\n"); hc(HC_DONE, 99); }
}
