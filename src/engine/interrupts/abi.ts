// The contract between the interrupt instrumentation (instrument/interrupts-pass.ts, build time) and
// the interrupt runtime (vcpu-interrupts.ts). Both import these names so a rename cannot silently
// break one side. Facts about v86 0.5.462's wasm that the runtime relies on are here too; the pass
// verifies the ones it can (static struct addresses) and fails the build when they move.

/** Bump with any change of instrument/interrupts-pass.ts: it names the cached build (ensure.ts). */
export const INTERRUPTS_PASS_VERSION = 9;

/**
 * (register offset, value) -> verdict. Called on guest writes to the local APIC's ID (0x20), LDR
 * (0xD0), DFR (0xE0) and ICR low (0x300) registers, only while ACPI (and so the APIC) is enabled.
 * For ID/LDR/DFR it runs after v86 stored the value (the result is ignored); for the ICR it runs
 * before v86 acts, with ICR high already stored: verdict 1 = let v86 deliver to its own APIC as
 * stock v86 would, 0 = deliver nothing locally (the runtime forwards and/or injects itself).
 */
export const IMPORT_APIC_WRITE = "gw_apic_write";
/**
 * (irq, redirection entry low, redirection entry high) -> verdict. Called when the IOAPIC is about
 * to send an interrupt (the entry is unmasked, its IRR bit is set and, for level, remote IRR was
 * clear), for every delivery mode. Verdict 1 = v86 delivers it to the local APIC (v86 itself only
 * does so for fixed and lowest-priority), 0 = v86's local delivery is suppressed.
 */
export const IMPORT_IOAPIC_SEND = "gw_ioapic_send";
/** (vector) -> verdict. EOI of a level-triggered vector; 1 = v86's local IOAPIC handles it too. */
export const IMPORT_EOI = "gw_eoi";
/** (address, size) -> value. IOAPIC window reads while ROUTE_IOAPIC is set. */
export const IMPORT_MMIO_READ = "gw_mmio_read";
/** (address, size, value). IOAPIC window writes while ROUTE_IOAPIC is set. */
export const IMPORT_MMIO_WRITE = "gw_mmio_write";
/** (port) -> value. 8-bit accesses to the PIC's ports (handled inside v86's wasm) while ROUTE_PIC is set. */
export const IMPORT_PIO_READ8 = "gw_pio_read8";
/** (port, value). */
export const IMPORT_PIO_WRITE8 = "gw_pio_write8";

/**
 * () -> nothing. While EXPORT_DEFER_IRQS is set: an APIC/IOAPIC write just ran with IF hidden from
 * v86's inlined interrupt check; the runtime takes pending interrupts at the next block boundary.
 */
export const IMPORT_IRQ_CHECK = "gw_irq_check";

/** Exported mutable i32 global: which in-wasm devices are routed to the imports above. */
export const EXPORT_ROUTE = "gw_route";
export const ROUTE_IOAPIC = 1;
export const ROUTE_PIC = 2;
/** Exported mutable i32 global: 1 makes rdmsr IA32_APIC_BASE report the BSP flag (stock v86: never). */
export const EXPORT_BSP = "gw_bsp";
/** Exported mutable i32 global: 1 = defer the interrupt check after APIC/IOAPIC writes (see IMPORT_IRQ_CHECK). */
export const EXPORT_DEFER_IRQS = "gw_defer_irqs";
/**
 * Exported mutable i32 global, 1 while v86's local APIC code reads a register or writes the timer's
 * initial count (the only places besides apic_timer(now) where the APIC reads the clock, through the
 * microtick import): the runtime then answers with the APIC timer's own clock, which may run behind
 * the wall clock (the time a vCPU waited for a page is hidden from its timer; vcpu-interrupts.ts).
 */
export const EXPORT_APIC_CLOCK = "gw_apic_clock";
/** Export of v86's apic::deliver(apic*, vector, mode, is_level): sets IRR (and TMR) like a received interrupt. */
export const EXPORT_APIC_DELIVER = "gw_apic_deliver";
/** Export of v86's call_interrupt_vector(vector, is_software, has_error_code, error_code). */
export const EXPORT_CALL_INTERRUPT_VECTOR = "gw_call_interrupt_vector";

/** Export of v86's ioapic::remote_eoi(apic*, vector) as it was before the hook (takes the IOAPIC lock). */
export const EXPORT_IOAPIC_EOI = "gw_ioapic_eoi";

/** Exports of v86's io_port_read8(port) / io_port_write8(port, value) as they were before routing. */
export const EXPORT_PIC_READ8 = "gw_io_port_read8";
export const EXPORT_PIC_WRITE8 = "gw_io_port_write8";

/** The in-wasm PIC's ports (v86 handles 8-bit accesses to these in Rust, never through cpu.io). */
export const PIC_PORTS = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1] as const;
export const APIC_MMIO_BASE = 0xfee00000;
export const IOAPIC_MMIO_BASE = 0xfec00000;
export const IOAPIC_MMIO_SIZE = 32;

/**
 * Linear-memory layout of v86's state that the runtime reads and writes (global_pointers.rs and the
 * view() calls in cpu.js of v86 0.5.462; the static APIC/IOAPIC addresses are checked by the pass).
 */
export const MEM = {
  reg32: 64, // EAX ECX EDX EBX ESP EBP ESI EDI, i32 each
  flagsChanged: 100,
  flags: 120,
  segmentAccessBytes: 512, // u8 x 8 (ES CS SS DS FS GS LDTR TR)
  apicEnabled: 548,
  acpiEnabled: 552,
  instructionPointer: 556, // linear: CS base + EIP
  previousIp: 560,
  idtrSize: 564,
  idtrOffset: 568,
  gdtrSize: 572,
  gdtrOffset: 576,
  cr: 580, // i32 x 8
  cpl: 612,
  inHlt: 616,
  lastVirtEip: 620,
  sreg: 668, // u16 x 8
  segmentIsNull: 724, // u8 x 8
  segmentOffsets: 736, // i32 x 8
  segmentLimits: 768, // u32 x 8
  protectedMode: 800,
  is32: 804,
  stackSize32: 808,
  /** v86's static Apic struct (apic.rs, #[repr(C)]), inside its Mutex. */
  apic: 35496,
  /** Lock bytes of the Mutexes around them (set while v86 is inside APIC/IOAPIC code). */
  apicLock: 35488,
  ioapicLock: 35692,
  /** v86's static Ioapic struct (ioapic.rs). */
  ioapic: 35696,
} as const;

/** Field offsets inside v86's Apic struct (apic.rs asserts several of them). */
export const APIC = {
  id: 0,
  timerDivider: 4,
  timerDividerShift: 8,
  timerInitialCount: 12,
  timerCurrentCount: 16,
  timerLastTick: 24, // f64
  lvtTimer: 32,
  lvtPerfCounter: 36,
  lvtInt0: 40,
  lvtInt1: 44,
  lvtError: 48,
  tpr: 52,
  icr0: 56,
  icr1: 60,
  irr: 64, // u32 x 8
  isr: 96,
  tmr: 128,
  spuriousVector: 160,
  destinationFormat: 164,
  localDestination: 168,
  error: 172,
  readError: 176,
  lvtThermal: 180,
  size: 184,
} as const;

export type WasmImport = (...args: number[]) => number | void;

/**
 * What a Vcpu without interrupt hooks does: exactly what stock v86 does (every interrupt delivered
 * locally, EOIs to the local IOAPIC). The routed-device imports are only called while a route flag
 * is set, which only VcpuInterrupts does, so reaching them here is a bug.
 */
export const INTERRUPT_IMPORT_DEFAULTS: Record<string, WasmImport> = {
  [IMPORT_APIC_WRITE]: () => 1,
  [IMPORT_IOAPIC_SEND]: () => 1,
  [IMPORT_EOI]: () => 1,
  [IMPORT_IRQ_CHECK]: () => {},
  [IMPORT_MMIO_READ]: (addr) => {
    throw new Error(`IOAPIC read at 0x${(addr >>> 0).toString(16)} was routed, but no handler is installed`);
  },
  [IMPORT_MMIO_WRITE]: (addr) => {
    throw new Error(`IOAPIC write at 0x${(addr >>> 0).toString(16)} was routed, but no handler is installed`);
  },
  [IMPORT_PIO_READ8]: (port) => {
    throw new Error(`PIC port read 0x${port.toString(16)} was routed, but no handler is installed`);
  },
  [IMPORT_PIO_WRITE8]: (port) => {
    throw new Error(`PIC port write 0x${port.toString(16)} was routed, but no handler is installed`);
  },
};
