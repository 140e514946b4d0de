/* Shared declarations of the SMP self-test guest. */
#ifndef SELFTEST_H
#define SELFTEST_H

#include "hw.h"

#define MAX_CPUS 16

/* Interrupt vectors used by the tests (one each, so counts never mix). */
enum {
  VEC_NMI = 2,
  VEC_WAKE = 0x30,      /* wakes an idle AP to look at the job slot */
  VEC_TEST = 0x40,      /* fixed IPI delivery check */
  VEC_BCAST = 0x41,     /* broadcast IPI check */
  VEC_SELF = 0x42,      /* self IPI check */
  VEC_PING = 0x43,      /* round trip: request */
  VEC_PONG = 0x44,      /* round trip: reply */
  VEC_TIMER = 0x50,     /* local APIC timer */
  VEC_UART = 0x60,      /* COM1 through the IOAPIC */
  VEC_SPURIOUS = 0xFF,
};

/* Per-CPU data, one page each so that counters of different CPUs never share a page
 * (on a distributed VM a shared page would bounce between nodes and skew what is measured). */
struct percpu {
  u32 index;
  u32 apic_id;
  volatile u32 online;
  volatile u32 seen_apic_id; /* what the CPU's own local APIC reports once it runs */
  volatile u32 nmi_count;
  volatile u32 irq_count[256];
  volatile u32 ping_reply_to; /* APIC ID to answer VEC_PING with */
  volatile u32 job_seen;      /* last job generation this AP looked at */
  volatile u32 work_done;     /* iterations a time-budgeted job did on this CPU */
} ALIGNED(PAGE_SIZE);

extern struct percpu cpus[MAX_CPUS];
extern u32 ncpus;            /* CPUs described by the firmware (>= 1) */
extern u32 ncpus_online;     /* CPUs that came up */
extern u8 apic_to_index[256];
extern u32 lapic_base, ioapic_base;
extern u32 tsc_khz;          /* TSC ticks per millisecond, calibrated against the PIT */
extern u32 param_scale;      /* iteration multiplier from the command line (scale=N) */
/* inject=misroute-ipi: a deliberate bug (fixed IPIs go to the wrong CPU) that proves the
 * delivery check can fail; used by the tests, never by a normal run */
enum { INJECT_NONE, INJECT_MISROUTE_IPI };
extern u32 param_inject;
extern int have_apic;

/* console.c */
void serial_init(void);
void con_lock(void);
void con_unlock(void);
void con_puts(const char *s);   /* caller holds the lock */
void con_putu(u64 v);
void con_putx(u32 v);
void con_putfixed3(u64 milli);  /* prints milli / 1000 with three decimals */
void report_pass(const char *check);
void report_fail(const char *check, const char *detail_a, u64 num, const char *detail_b);
void report_skip(const char *check, const char *reason);
void report_result(const char *name, u64 value_milli, const char *unit, const char *how);
void report_info(const char *key, const char *text);
void report_summary(void);
extern u32 n_pass, n_fail, n_skip;

/* platform.c */
void idt_init(void);
void idt_load(void);
void discover_cpus(void);
void lapic_enable(void);
u32 lapic_read(u32 reg);
void lapic_write(u32 reg, u32 v);
u32 lapic_id(void);
void lapic_eoi(void);
void lapic_send_ipi(u32 dest_apic, u32 icr_low);
void ioapic_route(u32 isa_irq, u32 vector, u32 dest_apic);
void ioapic_mask(u32 isa_irq);
void pic_mask_all(void);
void tsc_calibrate(void);
u64 ticks_to_ns(u64 ticks);
u64 ms_to_ticks(u32 ms);
void delay_us(u32 us);
u32 this_cpu(void);
extern const char *cpu_source;

/* smp.c */
typedef void (*job_fn)(u32 cpu, void *arg);
void smp_boot_aps(void);
void ap_idle_loop(u32 cpu) NORETURN;
int run_on(u32 mask, job_fn fn, void *arg); /* returns 0 when a CPU did not finish in time */
struct sbarrier {
  volatile u32 count;
  volatile u32 sense;
  u32 total;
};
void sbarrier_init(struct sbarrier *b, u32 total);
void sbarrier_wait(struct sbarrier *b, u32 *local_sense);
u32 all_cpus_mask(void);

/* tests.c */
void run_all_tests(void);

/* interrupts */
struct frame {
  u32 edi, esi, ebp, esp, ebx, edx, ecx, eax;
  u32 vector, error;
  u32 eip, cs, eflags;
};
void isr_dispatch(struct frame *f);

#endif
