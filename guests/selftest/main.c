/* BSP entry: read the command line, set up the machine, start the APs, run the tests. */
#include "selftest.h"

struct percpu cpus[MAX_CPUS];
u32 ncpus = 1, ncpus_online = 1;
u8 apic_to_index[256];
u32 param_scale = 1;
u32 param_inject = INJECT_NONE;
int have_apic, have_sse2;
static int param_debugexit;
static char cmdline[256] = "-"; /* in .data: survives the .bss clear below */

extern char __bss_start[], __bss_end[];

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define COM1 0x3F8

void *memset(void *d, int c, size_t n) {
  u8 *p = d;
  while (n--) *p++ = (u8)c;
  return d;
}
void *memcpy(void *d, const void *s, size_t n) {
  u8 *p = d;
  const u8 *q = s;
  while (n--) *p++ = *q++;
  return d;
}

static NORETURN void halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt");
}

static int str_eq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
static int has_prefix(const char *s, const char *prefix) {
  while (*prefix && *s == *prefix) s++, prefix++;
  return !*prefix;
}

static void cmdline_error(const char *check, const char *what, const char *word) {
  con_lock();
  con_puts("FAIL ");
  con_puts(check);
  con_puts(" ");
  con_puts(what);
  con_puts(", got ");
  con_puts(word);
  con_puts("\n");
  n_fail++;
  con_unlock();
}

static int parse_uint(const char *s, u32 *out) {
  u32 v = 0;
  if (!*s) return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 100000) return 0;
    v = v * 10 + (u32)(*s - '0');
  }
  *out = v;
  return 1;
}

/* Options: scale=N (1..1000) multiplies every iteration count; debugexit writes the
 * verdict to port 0xf4 (QEMU's isa-debug-exit) after the summary; inject=misroute-ipi plants
 * a bug. Other words (QEMU puts the kernel's file name first) are ignored. */
static void parse_cmdline(void) {
  char *p = cmdline;
  while (*p) {
    while (*p == ' ') p++;
    char *w = p;
    while (*p && *p != ' ') p++;
    char saved = *p;
    *p = 0;
    if (has_prefix(w, "scale=")) {
      u32 v;
      if (!parse_uint(w + 6, &v) || v < 1 || v > 1000) cmdline_error("cmdline.scale", "scale must be an integer from 1 to 1000", w);
      else param_scale = v;
    } else if (has_prefix(w, "inject=")) {
      if (str_eq(w + 7, "misroute-ipi")) param_inject = INJECT_MISROUTE_IPI;
      else cmdline_error("cmdline.inject", "inject knows only misroute-ipi", w);
    } else if (str_eq(w, "debugexit")) {
      param_debugexit = 1;
    } /* other words are ignored */
    *p = saved;
  }
}

void bsp_main(u32 magic, u32 mbi_addr) {
  if (magic == MULTIBOOT_BOOTLOADER_MAGIC) {
    const u32 *mbi = (const u32 *)(uintptr_t)mbi_addr;
    if (mbi[0] & 4) { /* cmdline present */
      const char *s = (const char *)(uintptr_t)mbi[4];
      u32 i = 0;
      for (; s[i] && i < sizeof(cmdline) - 1; i++) cmdline[i] = s[i];
      cmdline[i] = 0;
    } else {
      cmdline[0] = 0;
    }
  }
  for (char *p = __bss_start; p < __bss_end; p++) *p = 0;

  serial_init();
  con_lock();
  con_puts("\nSELFTEST BEGIN version=1\n");
  con_unlock();
  if (magic != MULTIBOOT_BOOTLOADER_MAGIC) report_fail("boot.multiboot", "bad loader magic ", magic, "");
  parse_cmdline();
  {
    con_lock();
    con_puts("INFO cmdline ");
    con_puts(cmdline[0] ? cmdline : "(none)");
    con_puts("\nINFO scale ");
    con_putu(param_scale);
    con_puts("\n");
    if (param_inject == INJECT_MISROUTE_IPI) con_puts("INFO inject misroute-ipi: a planted bug, ipi.fixed must fail\n");
    con_unlock();
  }

  u32 a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  have_apic = (d >> 9) & 1;
  have_sse2 = (d >> 26) & 1;
  if (!((d >> 4) & 1)) {
    report_fail("cpu.features", "no TSC (CPUID.1:EDX bit 4)", 0, 0);
    report_summary();
    halt_forever();
  }
  idt_init();
  idt_load();
  pic_mask_all(); /* every interrupt below goes through the local APIC / IOAPIC */
  tsc_calibrate();

  if (have_apic) {
    lapic_enable();
  } else {
    report_fail("cpu.features", "no local APIC (CPUID.1:EDX bit 9); on v86 pass acpi: true", 0, 0);
  }
  discover_cpus();
  {
    con_lock();
    con_puts("INFO cpus source=");
    con_puts(cpu_source);
    con_puts(" described=");
    con_putu(ncpus);
    con_puts(" bsp_apic_id=");
    con_putu(cpus[0].apic_id);
    con_puts(" lapic=");
    con_putx(lapic_base);
    con_puts(" ioapic=");
    con_putx(ioapic_base);
    con_puts("\n");
    con_unlock();
  }
  u64 t0 = rdtsc();
  if (ncpus > 1 && have_apic) {
    smp_boot_aps();
    report_result("smp.boot_ms", div64(ticks_to_ns(rdtsc() - t0), 1000), "ms",
                  "BSP TSC from the first INIT to the last AP running C code (INIT/SIPI/SIPI, 10 ms INIT delay each)");
  } else {
    cpus[0].seen_apic_id = have_apic ? lapic_id() : 0;
    cpus[0].online = 1;
    report_skip("smp.aps_started", ncpus > 1 ? "no local APIC" : "firmware describes 1 CPU");
  }
  sti();
  if (have_apic) run_all_tests();
  report_summary();
  if (param_debugexit) outl(0xF4, n_fail ? 1 : 0); /* QEMU exits with (value << 1) | 1 */
  halt_forever();
}

static const char *exc_names[32] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF?",
                                    "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM"};

void isr_dispatch(struct frame *f) {
  u32 v = f->vector;
  if (v < 32 && v != VEC_NMI) {
    con_lock();
    con_puts("FAIL exception ");
    con_puts(exc_names[v] ? exc_names[v] : "#??");
    con_puts(" vector=");
    con_putu(v);
    con_puts(" error=");
    con_putx(f->error);
    con_puts(" eip=");
    con_putx(f->eip);
    con_puts(" apic_id=");
    con_putu(have_apic ? lapic_id() : 0);
    con_puts("\n");
    n_fail++;
    con_unlock();
    report_summary();
    if (param_debugexit) outl(0xF4, 1);
    halt_forever();
  }
  u32 c = this_cpu();
  if (v == VEC_NMI) {
    cpus[c].nmi_count++; /* NMIs take no EOI */
    return;
  }
  if (v == VEC_SPURIOUS) return; /* spurious interrupts take no EOI either */
  cpus[c].irq_count[v]++;
  if (v == VEC_PING) {
    lapic_send_ipi(cpus[c].ping_reply_to, VEC_PONG);
  } else if (v == VEC_UART) {
    (void)inb(COM1 + 2); /* reading IIR acknowledges "transmitter empty" */
    outb(COM1 + 1, 0);   /* and no new interrupt until the test asks again */
  }
  lapic_eoi();
}
