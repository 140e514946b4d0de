/* Starting the APs the way an unmodified OS does (INIT, SIPI, SIPI with a real-mode
 * trampoline below 1 MiB) and handing them work. */
#include "selftest.h"

#define TRAMPOLINE 0x8000u /* page 8: SIPI vector 0x08. 0x7C00.. holds v86's multiboot info */
#define AP_STACK 16384

extern char ap_tramp_start[], ap_tramp_end[];
u32 ap_stack_top; /* read by the trampoline */
static volatile u32 ap_boot_index;
static u8 ap_stacks[MAX_CPUS][AP_STACK] ALIGNED(PAGE_SIZE);

/* The job slot has a page of its own: every AP reads it and bumps `done`, nothing else should
 * ride along when that page moves between nodes. */
static struct {
  job_fn fn;
  void *arg;
  volatile u32 mask;
  volatile u32 gen;
  volatile u32 done;
} job ALIGNED(PAGE_SIZE);

u32 all_cpus_mask(void) { return ncpus_online >= 32 ? ~0u : (1u << ncpus_online) - 1; }

static int wait_flag(volatile u32 *p, u32 want, u32 ms) {
  u64 end = rdtsc() + ms_to_ticks(ms);
  while (load32(p) != want)
    if (rdtsc() > end) return 0;
    else cpu_relax();
  return 1;
}

void ap_main(void) {
  idt_load();
  lapic_enable();
  u32 idx = ap_boot_index;
  cpus[idx].seen_apic_id = lapic_id();
  cpus[idx].job_seen = job.gen;
  store32(&cpus[idx].online, 1);
  ap_idle_loop(idx);
}

void ap_idle_loop(u32 cpu) {
  u32 seen = cpus[cpu].job_seen;
  for (;;) {
    cli();
    u32 g = load32(&job.gen);
    if (g != seen) {
      seen = g;
      int member = (job.mask >> cpu) & 1;
      job_fn fn = job.fn;
      void *arg = job.arg;
      store32(&cpus[cpu].job_seen, g);
      sti();
      if (member) {
        fn(cpu, arg);
        atomic_xadd(&job.done, 1);
      }
      continue;
    }
    /* sti takes effect after the next instruction, so a wake-up IPI cannot slip in
     * between the check above and the hlt */
    __asm__ volatile("sti; hlt" ::: "memory");
  }
}

/* Run fn on every CPU in mask (CPU 0 is the caller) and wait for all of them. */
int run_on(u32 mask, job_fn fn, void *arg) {
  u32 aps = all_cpus_mask() & ~1u;
  /* every AP must have seen the previous job before the slot is reused */
  for (u32 i = 1; i < ncpus_online; i++)
    if (!wait_flag(&cpus[i].job_seen, job.gen, 60000)) return 0;
  job.fn = fn;
  job.arg = arg;
  job.mask = mask;
  job.done = 0;
  store32(&job.gen, job.gen + 1);
  for (u32 i = 1; i < ncpus_online; i++)
    if (aps & (1u << i)) lapic_send_ipi(cpus[i].apic_id, VEC_WAKE);
  if (mask & 1) fn(0, arg);
  u32 want = 0;
  for (u32 m = mask & aps; m; m &= m - 1) want++; /* no libgcc, so no __builtin_popcount */
  u64 end = rdtsc() + ms_to_ticks(120000) * param_scale;
  while (load32(&job.done) != want)
    if (rdtsc() > end) return 0;
    else cpu_relax();
  return 1;
}

void smp_boot_aps(void) {
  u32 len = (u32)(ap_tramp_end - ap_tramp_start);
  u8 *dst = (u8 *)(uintptr_t)TRAMPOLINE;
  for (u32 i = 0; i < len; i++) dst[i] = (u8)ap_tramp_start[i];
  ncpus_online = 1;
  cpus[0].seen_apic_id = lapic_id();
  cpus[0].online = 1;
  for (u32 i = 1; i < ncpus; i++) {
    ap_boot_index = i;
    ap_stack_top = (u32)(uintptr_t)&ap_stacks[i][AP_STACK];
    u32 id = cpus[i].apic_id;
    lapic_send_ipi(id, 0x4500); /* INIT, assert */
    delay_us(10000);
    for (int sipi = 0; sipi < 2 && !load32(&cpus[i].online); sipi++) {
      lapic_send_ipi(id, 0x4600 | (TRAMPOLINE >> 12)); /* start-up */
      delay_us(200);
    }
    if (!wait_flag(&cpus[i].online, 1, 10000)) {
      report_fail("smp.aps_started", "no answer from APIC ID ", id, " after INIT/SIPI/SIPI");
      return; /* CPUs are used by index, so stop at the first that does not come up */
    }
    ncpus_online++;
  }
  if (ncpus > 1) report_pass("smp.aps_started");
}

void sbarrier_init(struct sbarrier *b, u32 total) {
  b->count = 0;
  b->sense = 0;
  b->total = total;
}

void sbarrier_wait(struct sbarrier *b, u32 *local_sense) {
  u32 s = !*local_sense;
  *local_sense = s;
  if (atomic_xadd(&b->count, 1) == b->total - 1) {
    b->count = 0;
    store32(&b->sense, s);
  } else {
    while (load32(&b->sense) != s) cpu_relax();
  }
}
