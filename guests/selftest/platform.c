/* What an OS learns and programs about the PC: firmware CPU tables (MP table, ACPI MADT),
 * the local APIC, the IOAPIC, the 8259 PIC and the PIT-calibrated TSC. */
#include "selftest.h"

#define LAPIC_DEFAULT 0xFEE00000u
#define IOAPIC_DEFAULT 0xFEC00000u

u32 lapic_base = LAPIC_DEFAULT;
u32 ioapic_base = IOAPIC_DEFAULT;
u32 tsc_khz;
const char *cpu_source = "none";
static u32 isa_irq_pin[16]; /* ISA IRQ -> IOAPIC pin (identity unless the firmware overrides) */

/* ---------------- IDT ---------------- */
struct idt_entry {
  u16 off_lo, sel;
  u8 zero, type;
  u16 off_hi;
} __attribute__((packed));
static struct idt_entry idt[256] ALIGNED(8);
extern char isr_stubs[];

void idt_init(void) {
  for (u32 v = 0; v < 256; v++) {
    u32 addr = (u32)(uintptr_t)isr_stubs + 16 * v;
    idt[v].off_lo = (u16)addr;
    idt[v].sel = 0x08;
    idt[v].zero = 0;
    idt[v].type = 0x8E; /* present, ring 0, 32-bit interrupt gate (IF cleared on entry) */
    idt[v].off_hi = (u16)(addr >> 16);
  }
}

void idt_load(void) {
  struct {
    u16 limit;
    u32 base;
  } __attribute__((packed)) d = {sizeof(idt) - 1, (u32)(uintptr_t)idt};
  __asm__ volatile("lidt %0" ::"m"(d));
}

/* ---------------- firmware tables ---------------- */
static int checksum_ok(const u8 *p, u32 len) {
  u8 s = 0;
  for (u32 i = 0; i < len; i++) s = (u8)(s + p[i]);
  return s == 0;
}
static int sig_eq(const u8 *p, const char *sig, u32 n) {
  for (u32 i = 0; i < n; i++)
    if (p[i] != (u8)sig[i]) return 0;
  return 1;
}
static u32 rd32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static u16 rd16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }

static const u8 *scan(u32 start, u32 len, const char *sig, u32 siglen, u32 step, u32 cklen) {
  for (u32 a = start; a + cklen <= start + len; a += step) {
    const u8 *p = (const u8 *)(uintptr_t)a;
    if (sig_eq(p, sig, siglen) && checksum_ok(p, cklen ? cklen : 16)) return p;
  }
  return 0;
}

/* The three places the MP spec and ACPI spec say to look: the first KiB of the EBDA, the last
 * KiB of base memory, and the BIOS ROM area. */
static const u8 *find_low(const char *sig, u32 siglen, u32 step, u32 cklen, u32 rom_start) {
  u16 seg;
  /* the BDA word at 0x40E holds the EBDA segment; read through asm because GCC treats
   * constant addresses in the first page as null-pointer arithmetic */
  __asm__ volatile("movw 0x40E, %0" : "=r"(seg));
  u32 ebda = (u32)seg << 4;
  const u8 *p = 0;
  if (ebda >= 0x80000 && ebda < 0xA0000) p = scan(ebda, 1024, sig, siglen, step, cklen);
  if (!p) p = scan(0x9FC00, 1024, sig, siglen, step, cklen);
  if (!p) p = scan(rom_start, 0x100000 - rom_start, sig, siglen, step, cklen);
  return p;
}

struct cpu_list {
  u32 n;
  u8 ids[MAX_CPUS];
  u32 ignored; /* enabled CPUs beyond MAX_CPUS */
};

static void add_cpu(struct cpu_list *l, u8 id, int is_bsp) {
  for (u32 i = 0; i < l->n; i++)
    if (l->ids[i] == id) return; /* the distinct-ID check looks at what actually starts */
  if (l->n >= MAX_CPUS) {
    l->ignored++;
    return;
  }
  if (is_bsp && l->n) { /* keep the BSP first */
    l->ids[l->n++] = l->ids[0];
    l->ids[0] = id;
  } else {
    l->ids[l->n++] = id;
  }
}

static int parse_mp(struct cpu_list *l, u32 *lapic, u32 *ioapic, u32 *pins) {
  const u8 *fp = find_low("_MP_", 4, 16, 16, 0xF0000);
  if (!fp) return 0;
  u32 cfg_addr = rd32(fp + 4);
  if (!cfg_addr) return 0; /* a default configuration: not produced by any emulator we target */
  const u8 *cfg = (const u8 *)(uintptr_t)cfg_addr;
  if (!sig_eq(cfg, "PCMP", 4) || !checksum_ok(cfg, rd16(cfg + 4))) return 0;
  *lapic = rd32(cfg + 36);
  u32 count = rd16(cfg + 34);
  const u8 *e = cfg + 44;
  int isa_bus = -1;
  for (u32 i = 0; i < count; i++) {
    switch (e[0]) {
    case 0: /* processor */
      if (e[3] & 1) add_cpu(l, e[1], e[3] & 2);
      e += 20;
      break;
    case 1: /* bus */
      if (sig_eq(e + 2, "ISA", 3)) isa_bus = e[1];
      e += 8;
      break;
    case 2: /* IOAPIC */
      if (e[3] & 1) *ioapic = rd32(e + 4);
      e += 8;
      break;
    case 3: /* I/O interrupt assignment: INT type 0 from the ISA bus */
      if (e[1] == 0 && (int)e[4] == isa_bus && e[5] < 16) pins[e[5]] = e[7];
      e += 8;
      break;
    default:
      e += 8;
      break;
    }
  }
  return l->n > 0;
}

static int parse_madt(struct cpu_list *l, u32 *lapic, u32 *ioapic, u32 *pins) {
  const u8 *rsdp = find_low("RSD PTR ", 8, 16, 20, 0xE0000);
  if (!rsdp) return 0;
  const u8 *rsdt = (const u8 *)(uintptr_t)rd32(rsdp + 16);
  if (!rsdt || !sig_eq(rsdt, "RSDT", 4) || !checksum_ok(rsdt, rd32(rsdt + 4))) return 0;
  u32 n = (rd32(rsdt + 4) - 36) / 4;
  for (u32 i = 0; i < n; i++) {
    const u8 *t = (const u8 *)(uintptr_t)rd32(rsdt + 36 + 4 * i);
    if (!sig_eq(t, "APIC", 4) || !checksum_ok(t, rd32(t + 4))) continue;
    u32 len = rd32(t + 4);
    *lapic = rd32(t + 36);
    for (u32 off = 44; off + 2 <= len && t[off + 1] >= 2; off += t[off + 1]) {
      const u8 *e = t + off;
      if (e[0] == 0 && (rd32(e + 4) & 1)) add_cpu(l, e[3], l->n == 0);
      else if (e[0] == 1 && rd32(e + 8) == 0) *ioapic = rd32(e + 4); /* the IOAPIC at GSI 0 */
      else if (e[0] == 2 && e[2] == 0 && e[3] < 16) pins[e[3]] = rd32(e + 4);
    }
    return l->n > 0;
  }
  return 0;
}

static void info_list(const char *key, const struct cpu_list *l) {
  con_lock();
  con_puts("INFO ");
  con_puts(key);
  con_puts(" apic_ids=");
  for (u32 i = 0; i < l->n; i++) {
    if (i) con_puts(",");
    con_putu(l->ids[i]);
  }
  con_puts("\n");
  con_unlock();
}

/* every CPU in a is also in b */
static int subset(const struct cpu_list *a, const struct cpu_list *b) {
  for (u32 i = 0; i < a->n; i++) {
    int found = 0;
    for (u32 j = 0; j < b->n; j++) found |= a->ids[i] == b->ids[j];
    if (!found) return 0;
  }
  return 1;
}

/* Modern OSes prefer the MADT and fall back to the MP table; with neither (e.g. v86 started
 * with multiboot and no BIOS) the MP spec's rule applies: no MP floating pointer means a
 * uniprocessor system, so only the BSP runs and multi-CPU checks are skipped. */
void discover_cpus(void) {
  struct cpu_list mp = {0}, madt = {0};
  u32 mp_lapic = 0, mp_ioapic = 0, madt_lapic = 0, madt_ioapic = 0;
  u32 mp_pins[16], madt_pins[16];
  for (u32 i = 0; i < 16; i++) mp_pins[i] = madt_pins[i] = isa_irq_pin[i] = i;
  int have_mp = parse_mp(&mp, &mp_lapic, &mp_ioapic, mp_pins);
  int have_madt = parse_madt(&madt, &madt_lapic, &madt_ioapic, madt_pins);
  const struct cpu_list *use = 0;
  if (have_madt) {
    use = &madt;
    cpu_source = have_mp ? "madt+mp" : "madt";
    if (madt_lapic) lapic_base = madt_lapic;
    if (madt_ioapic) ioapic_base = madt_ioapic;
    for (u32 i = 0; i < 16; i++) isa_irq_pin[i] = madt_pins[i];
  } else if (have_mp) {
    use = &mp;
    cpu_source = "mp";
    if (mp_lapic) lapic_base = mp_lapic;
    if (mp_ioapic) ioapic_base = mp_ioapic;
    for (u32 i = 0; i < 16; i++) isa_irq_pin[i] = mp_pins[i];
  }
  u32 bsp = have_apic ? lapic_id() : 0;
  ncpus = 1;
  cpus[0].apic_id = bsp;
  if (use) {
    for (u32 i = 0; i < use->n; i++)
      if (use->ids[i] != bsp) {
        cpus[ncpus].apic_id = use->ids[i];
        ncpus++;
      }
    if (use->ignored) report_info("cpus.ignored", "more enabled CPUs than MAX_CPUS (16)");
  }
  for (u32 i = 0; i < ncpus; i++) {
    cpus[i].index = i;
    apic_to_index[cpus[i].apic_id] = (u8)i;
  }
  if (have_mp) info_list("firmware.mp", &mp);
  if (have_madt) info_list("firmware.madt", &madt);
  /* SeaBIOS 1.16 on QEMU 7.2 lists only the BSP in its MP table while its MADT lists every
   * CPU, so equality is too strict; what must hold is that the MP table names no CPU the
   * MADT lacks and that both put the same BSP first. */
  if (have_mp && have_madt) {
    if (subset(&mp, &madt) && mp.ids[0] == madt.ids[0]) report_pass("firmware.tables_consistent");
    else report_fail("firmware.tables_consistent", "the MP table lists a CPU the MADT does not, or another BSP", 0, 0);
  } else {
    report_skip("firmware.tables_consistent", have_mp || have_madt ? "only one of MP table / MADT present"
                                                                   : "no MP table and no MADT");
  }
}

/* ---------------- local APIC ---------------- */
u32 lapic_read(u32 reg) { return mmio_read32(lapic_base + reg); }
void lapic_write(u32 reg, u32 v) { mmio_write32(lapic_base + reg, v); }
u32 lapic_id(void) { return lapic_read(0x20) >> 24; }
void lapic_eoi(void) { lapic_write(0xB0, 0); }

void lapic_enable(void) {
  lapic_write(0xF0, 0x100 | VEC_SPURIOUS); /* software enable */
  lapic_write(0x80, 0);                     /* accept every priority */
  lapic_write(0x320, 0x10000 | VEC_TIMER);  /* timer masked until the timer check */
}

void lapic_send_ipi(u32 dest_apic, u32 icr_low) {
  u32 spins = 0;
  while ((lapic_read(0x300) & (1u << 12)) && ++spins < 10000000) cpu_relax(); /* delivery pending */
  lapic_write(0x310, dest_apic << 24);
  lapic_write(0x300, icr_low);
}

u32 this_cpu(void) { return have_apic ? apic_to_index[lapic_id()] : 0; }

/* ---------------- IOAPIC and PIC ---------------- */
static void ioapic_write(u32 reg, u32 v) {
  mmio_write32(ioapic_base, reg);
  mmio_write32(ioapic_base + 0x10, v);
}

void ioapic_route(u32 isa_irq, u32 vector, u32 dest_apic) {
  u32 pin = isa_irq_pin[isa_irq];
  ioapic_write(0x10 + 2 * pin + 1, dest_apic << 24);
  ioapic_write(0x10 + 2 * pin, vector); /* fixed, physical, edge, active high, unmasked */
}

void ioapic_mask(u32 isa_irq) { ioapic_write(0x10 + 2 * isa_irq_pin[isa_irq], 0x10000); }

void pic_mask_all(void) {
  outb(0x21, 0xFF);
  outb(0xA1, 0xFF);
}

/* ---------------- time ---------------- */
/* PIT channel 2 in mode 0 (gate from port 0x61 bit 0, output on bit 5), as Linux does:
 * count 11932 input clocks of 1.193182 MHz = 10 ms, and read the TSC at both ends. */
static u64 pit_measure_10ms(void) {
  u8 p61 = inb(0x61);
  outb(0x61, (u8)((p61 & ~0x02) | 0x01));
  outb(0x43, 0xB0);
  outb(0x42, 11932 & 0xFF);
  u64 t0 = rdtsc();
  outb(0x42, 11932 >> 8);
  u32 spins = 0;
  while (!(inb(0x61) & 0x20) && ++spins < 100000000) cpu_relax();
  u64 t1 = rdtsc();
  outb(0x61, p61);
  return spins >= 100000000 ? 0 : t1 - t0;
}

void tsc_calibrate(void) {
  /* A delay (host preemption, an emulator's time slice) can only make the TSC interval longer,
   * never shorter, so the smallest of five measurements is the best estimate. */
  u64 best = 0;
  for (int i = 0; i < 5; i++) {
    u64 m = pit_measure_10ms();
    if (m && (!best || m < best)) best = m;
  }
  tsc_khz = (u32)div64(best, 10);
}

u64 ticks_to_ns(u64 ticks) { return tsc_khz ? div64(ticks * 1000000, tsc_khz) : 0; }
u64 ms_to_ticks(u32 ms) { return (u64)ms * tsc_khz; }

void delay_us(u32 us) {
  u64 end = rdtsc() + div64((u64)us * tsc_khz, 1000);
  while (rdtsc() < end) cpu_relax();
}
