/* COM1 output and the report format: one line per fact (see README.md). */
#include "selftest.h"

#define COM1 0x3F8

u32 n_pass, n_fail, n_skip;
static volatile u32 con_lock_word;

void serial_init(void) {
  outb(COM1 + 1, 0x00); /* no interrupts until the IOAPIC check asks for one */
  outb(COM1 + 3, 0x80); /* DLAB */
  outb(COM1 + 0, 0x01); /* 115200 baud */
  outb(COM1 + 1, 0x00);
  outb(COM1 + 3, 0x03); /* 8N1 */
  outb(COM1 + 2, 0x07); /* FIFO on, cleared */
  outb(COM1 + 4, 0x0B); /* DTR, RTS, OUT2 (OUT2 gates the IRQ line on PC hardware) */
}

void con_lock(void) {
  while (atomic_xchg(&con_lock_word, 1))
    while (load32(&con_lock_word)) cpu_relax();
}
void con_unlock(void) { __asm__ volatile("movl $0, %0" : "=m"(con_lock_word)::"memory"); }

static void putc_raw(char c) {
  u32 spins = 0;
  /* wait for the transmit holding register; give up after a while so a broken UART
   * cannot hang the test (emulated UARTs are always ready) */
  while (!(inb(COM1 + 5) & 0x20) && ++spins < 1000000) cpu_relax();
  outb(COM1, (u8)c);
}

void con_puts(const char *s) {
  for (; *s; s++) {
    if (*s == '\n') putc_raw('\r');
    putc_raw(*s);
  }
}

void con_putu(u64 v) {
  char buf[24];
  int i = 0;
  do {
    u64 q = div64(v, 10);
    buf[i++] = (char)('0' + (u32)(v - q * 10));
    v = q;
  } while (v);
  while (i) putc_raw(buf[--i]);
}

void con_putx(u32 v) {
  static const char hex[] = "0123456789abcdef";
  con_puts("0x");
  for (int s = 28; s >= 0; s -= 4) putc_raw(hex[(v >> s) & 15]);
}

void con_putfixed3(u64 milli) {
  u64 whole = div64(milli, 1000);
  u32 frac = (u32)(milli - whole * 1000);
  con_putu(whole);
  putc_raw('.');
  putc_raw((char)('0' + frac / 100));
  putc_raw((char)('0' + (frac / 10) % 10));
  putc_raw((char)('0' + frac % 10));
}

void report_pass(const char *check) {
  con_lock();
  con_puts("PASS ");
  con_puts(check);
  con_puts("\n");
  n_pass++;
  con_unlock();
}

/* detail is "<a><num><b>" so callers can name the number that was wrong */
void report_fail(const char *check, const char *a, u64 num, const char *b) {
  con_lock();
  con_puts("FAIL ");
  con_puts(check);
  con_puts(" ");
  con_puts(a);
  if (b) {
    con_putu(num);
    con_puts(b);
  }
  con_puts("\n");
  n_fail++;
  con_unlock();
}

void report_skip(const char *check, const char *reason) {
  con_lock();
  con_puts("SKIP ");
  con_puts(check);
  con_puts(" ");
  con_puts(reason);
  con_puts("\n");
  n_skip++;
  con_unlock();
}

void report_result(const char *name, u64 value_milli, const char *unit, const char *how) {
  con_lock();
  con_puts("RESULT ");
  con_puts(name);
  con_puts(" ");
  con_putfixed3(value_milli);
  con_puts(" ");
  con_puts(unit);
  con_puts(" ");
  con_puts(how);
  con_puts("\n");
  con_unlock();
}

void report_info(const char *key, const char *text) {
  con_lock();
  con_puts("INFO ");
  con_puts(key);
  con_puts(" ");
  con_puts(text);
  con_puts("\n");
  con_unlock();
}

void report_summary(void) {
  con_lock();
  con_puts("SUMMARY pass=");
  con_putu(n_pass);
  con_puts(" fail=");
  con_putu(n_fail);
  con_puts(" skip=");
  con_putu(n_skip);
  con_puts(" cpus=");
  con_putu(ncpus_online);
  con_puts("\n");
  con_unlock();
}
