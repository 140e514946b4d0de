// Mirror of layout.h.
export const HC_CMD_PORT = 0x520;
export const HC_ARG_PORT = 0x524;
export const HC = { READY: 1, DONE: 2, REGS: 3, SENT: 4, SIPI: 5, POLL: 6 } as const;
export const IOAPIC_IRQ = 7;
export const IPI_BENCH = 20000;
export const V = { REMOTE: 0x41, SELF: 0x42, LOGICAL: 0x43, INJECT: 0x50, LEVEL: 0x51, IOAPIC: 0x60 } as const;
