/* Shared with layout.ts: hypercall ports and numbers, vectors of the interrupts guest. */
#define HC_CMD_PORT 0x520
#define HC_ARG_PORT 0x524 /* each dword written here is one argument of the next hypercall */

#define HC_READY 1 /* args: address of state_entry; the host may now inject or change state */
#define HC_DONE 2  /* args: failure count */
#define HC_REGS 3  /* args: eax ebx ecx edx esi edi (from state_entry) */
#define HC_SENT 4  /* args: step number; the guest has sent the IPIs of that step */
#define HC_SIPI 5  /* args: cs (sent by the real-mode code the host plants for an AP) */
#define HC_POLL 6  /* returns the host's answer (used to wait for the host) */

#define V_REMOTE 0x41   /* IPI to APIC 1: must not run here */
#define V_SELF 0x42     /* self IPI: must run here */
#define V_LOGICAL 0x43  /* logical IPI to this CPU's LDR */
#define V_INJECT 0x50   /* injected by the host, edge */
#define V_LEVEL 0x51    /* injected by the host, level (its EOI reaches the host) */
#define V_IOAPIC 0x60   /* IOAPIC input IOAPIC_IRQ */
#define IOAPIC_IRQ 7    /* unused by v86 devices (9 is the ACPI SCI, which fires by itself) */
#define NVEC 256
#define IPI_BENCH 20000 /* self IPIs in the ipibench scenario */
