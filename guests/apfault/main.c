/* A two-CPU multiboot guest whose AP makes the engine fail: the BSP starts the AP with
 * INIT/SIPI/SIPI (as an OS does), the AP prints a line and loads its task register from a zero
 * GDT entry (ap.S). Tests use it to check that an engine panic on any node stops the VM with a
 * message naming that node (test/runtime/nodejs/node-failure.test.ts, test/runtime/web/node-failure.e2e.test.ts). */
#include <stdint.h>

#define TRAMPOLINE 0x8000u /* SIPI vector 0x08 */
#define LAPIC 0xFEE00000u

extern char ap_tramp_start[], ap_tramp_end[];

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0,%1" ::"a"(v), "Nd"(p)); }
static void puts_(const char *s) { while (*s) outb(0x3F8, (uint8_t)*s++); }
static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC + reg) = v; }
static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC + reg); }

/* About `n` port reads' worth of delay (each port access is slow on any emulator). */
static void spin(uint32_t n) { for (volatile uint32_t i = 0; i < n; i++) __asm__ volatile("inb $0x80, %%al" ::: "eax"); }

static void send_ipi(uint32_t apic_id, uint32_t low) {
  lapic_write(0x310, apic_id << 24);
  lapic_write(0x300, low);
  while (lapic_read(0x300) & (1u << 12)) {}
}

void ap_main(void) { puts_("APFAULT AP in protected mode, loading TR from a zero descriptor\n"); }

void main(void) {
  puts_("APFAULT BSP up\n");
  lapic_write(0xF0, 0x1FF); /* software-enable the local APIC */
  uint32_t len = (uint32_t)(ap_tramp_end - ap_tramp_start);
  for (uint32_t i = 0; i < len; i++) ((volatile uint8_t *)TRAMPOLINE)[i] = (uint8_t)ap_tramp_start[i];
  send_ipi(1, 0x4500); /* INIT */
  spin(1000);
  send_ipi(1, 0x4600 | (TRAMPOLINE >> 12)); /* start-up */
  spin(100);
  send_ipi(1, 0x4600 | (TRAMPOLINE >> 12));
  puts_("APFAULT BSP sent INIT/SIPI/SIPI\n");
  /* Stay alive (the VM must be stopped by the AP's failure, not by this CPU ending). */
  for (;;) {
    spin(2000000);
    puts_("APFAULT BSP still running\n");
  }
}
