// Interrupts and control of one vCPU: its APIC ID, the hooks that see every interrupt it sends (and
// every IOAPIC delivery, and level EOIs) before v86 acts, injection of interrupts it receives,
// INIT / start-up, stop/resume and architectural state. Wraps a Vcpu; the wasm side is
// instrument/interrupts-pass.ts. Documented in src/engine/README-interrupts.md.

import { Vcpu, EngineError, type VcpuOptions } from "../vcpu.ts";
import {
  APIC,
  EXPORT_APIC_DELIVER,
  EXPORT_BSP,
  EXPORT_CALL_INTERRUPT_VECTOR,
  EXPORT_DEFER_IRQS,
  EXPORT_APIC_CLOCK,
  EXPORT_IOAPIC_EOI,
  EXPORT_PIC_READ8,
  EXPORT_PIC_WRITE8,
  EXPORT_ROUTE,
  IMPORT_APIC_WRITE,
  IMPORT_EOI,
  IMPORT_IOAPIC_SEND,
  IMPORT_IRQ_CHECK,
  IMPORT_MMIO_READ,
  IMPORT_MMIO_WRITE,
  IMPORT_PIO_READ8,
  IMPORT_PIO_WRITE8,
  IOAPIC_MMIO_BASE,
  IOAPIC_MMIO_SIZE,
  MEM,
  PIC_PORTS,
  ROUTE_IOAPIC,
  ROUTE_PIC,
  type WasmImport,
} from "./abi.ts";
import { decodeIcr, decodeRedirection, includes, toIncoming } from "./decode.ts";
import { readCpuState, startupState, writeCpuState, type CpuState } from "./cpu-state.ts";
import type { ApicAddressing, ApicRegister, IncomingInterrupt, OutgoingInterrupt, VcpuRunState } from "./types.ts";

export interface InterruptHooks {
  /**
   * Every interrupt this vCPU's APIC sends and every delivery of the (local) IOAPIC, before v86
   * acts. Return true when it must also reach this vCPU; forward it elsewhere from here. Called in
   * the middle of a guest instruction: do not call getState/setState; inject() is fine (queued).
   * Default: true exactly when the destination includes this APIC.
   */
  onSend?: (msg: OutgoingInterrupt) => boolean;
  /** The guest wrote its APIC ID, LDR or DFR (value as stored), e.g. to broadcast to every node. */
  onApicRegister?: (reg: ApicRegister, value: number, now: ApicAddressing) => void;
  /**
   * The guest signalled EOI for a level-triggered vector. Return true to let this node's IOAPIC
   * see it (node 0); forward it to node 0 and return false elsewhere. Default: true.
   */
  onEoi?: (vector: number) => boolean;
  /**
   * Called inside a run slice between two of v86's instruction chunks (about 100k instructions
   * each; a slice runs chunks for at least 1 ms), at an instruction boundary with no JIT code on
   * the stack, while the vCPU runs (not halted). Serve messages here (inject, revoke pages, device
   * accesses) to answer other nodes within a chunk rather than after the slice. Fixed interrupts
   * injected here are taken right after it; NMI/INIT/SIPI end the slice. Not called while halted
   * or waiting for SIPI: the slice ends then, and the platform serves between slices.
   */
  onChunk?: () => void;
  /**
   * Asked inside a chunk whenever the guest reads the clock (RDTSC; v86's own timer reads): true
   * when something waits to be served. The slice then ends after the current block, so the
   * platform serves it at once instead of at the chunk's end. A guest spinning on the TSC (a delay
   * loop, a wait with a timeout) runs a 100k-instruction chunk for 10-30 ms, since every RDTSC is a
   * call out of the wasm; an IPI or page request arriving meanwhile waited that long. Must be cheap.
   */
  pending?: () => boolean;
  /**
   * Asked inside a chunk when the guest spins on the clock (SPIN_READS clock reads in a row, each
   * within SPIN_GAP_MS of the last: a delay loop, a wait for a flag with a timeout): block the
   * thread for at most `ms`, returning early when something arrives to be served; the slice then
   * ends (v86's timers and the platform's serving run, as after a HLT). Why: the pause-loop exit
   * of hardware virtualization. Two tabs' vCPUs, their net workers and the browser's network
   * threads share a few cores; a vCPU spinning at full speed for an IPI's answer takes a core from
   * the very threads that carry it (measured, and why nodes leave it off by default:
   * README-interrupts.md, "A vCPU that spins on the clock"). Time goes on while it blocks (the TSC
   * and the APIC timer count it), so the guest's deadlines are kept to within `ms`. Must not run
   * guest code or touch the engine.
   */
  spinWait?: (ms: number) => void;
}

/** Clock reads in a row, each within SPIN_GAP_MS of the one before, that make a spin (see InterruptHooks.spinWait). */
export const SPIN_READS = 64;
export const SPIN_GAP_MS = 0.01;
/** The longest block per spinWait: what a guest's deadline may overshoot by. */
export const SPIN_WAIT_MS = 0.2;

/** A handler for a routed device; it may block (Atomics.wait in a worker) until the answer comes. */
export interface RoutedMmio {
  read(address: number, size: number): number;
  write(address: number, size: number, value: number): void;
}
export interface RoutedPorts {
  read8(port: number): number;
  write8(port: number, value: number): void;
}

export interface VcpuInterruptsOptions extends VcpuOptions {
  /** This vCPU's APIC ID (0..254); set before the first instruction. */
  apicId: number;
  /** "ap": starts in wait-for-SIPI (after an INIT-like reset) and runs only after a start-up IPI. */
  role: "bsp" | "ap";
  hooks?: InterruptHooks;
  /**
   * The machine's one time-stamp counter, as every node can read it (e.g. from a clock all nodes
   * share). v86 counts its TSC from its own start, so vCPUs in different workers or tabs would
   * disagree by seconds; Linux (tsc=reliable) trusts them to agree, and a CPU whose TSC lags sees
   * time stand still, its timers late. When given, a BSP takes it at once and an AP at its start-up IPI.
   */
  tscClock?: () => bigint;
  /**
   * Milliseconds of this vCPU's life its local APIC timer must not see, never decreasing (the time
   * it spent waiting for a page or an I/O read, including a wait under way). The APIC timer then
   * counts only time the vCPU could run: a periodic tick whose handler waits longer than the period
   * for pages held elsewhere no longer fires again the moment it returns, leaving the CPU no time for
   * anything but ticks. The TSC and every other clock stay on wall time. Default: none hidden.
   */
  apicTimerLag?: () => number;
}

export interface InterruptStats {
  sent: number;
  sentLocal: number;
  ioapicSent: number;
  eois: number;
  injected: Record<IncomingInterrupt["kind"], number>;
  /** Interrupts dropped as malformed (reserved delivery mode, illegal vector), with the reason. */
  dropped: string[];
  /** Times the guest spun on the clock and hooks.spinWait was asked to block. */
  spinWaits: number;
}

interface V86Internals {
  v86: {
    running: boolean;
    cpu: {
      main_loop: () => number;
      stop_idling: () => void;
      run_hardware_timers: (acpi: boolean, now: number) => number;
      apic_timer: (now: number) => number;
      device_raise_irq: (irq: number) => void;
      device_lower_irq: (irq: number) => void;
    };
  };
}

type Ex = Record<string, (...a: number[]) => number> & {
  read_tsc(): bigint;
  get_eflags(): number;
  full_clear_tlb(): void;
  update_state_flags(): void;
};

/** v86's TSC: 10^6 ticks per millisecond of its clock (1 GHz). */
export const TSC_PER_MS = 1_000_000;
const U64 = (1n << 64n) - 1n;

// Wait-for-SIPI and paused vCPUs ask v86 to come back after this many ms (any injection wakes it sooner).
const IDLE_MS = 100;

export class VcpuInterrupts {
  readonly stats: InterruptStats = {
    sent: 0,
    sentLocal: 0,
    ioapicSent: 0,
    eois: 0,
    injected: { fixed: 0, nmi: 0, init: 0, "init-deassert": 0, startup: 0 },
    dropped: [],
    spinWaits: 0,
  };
  hooks: InterruptHooks;
  private state: VcpuRunState = "running";
  private readonly pending: IncomingInterrupt[] = [];
  private readonly pendingEois: number[] = [];
  private mainLoopDepth = 0;
  /** Interrupts became deliverable outside a slice; handle_irqs runs at the start of the next one. */
  private irqsPending = false;
  /** A queued NMI/INIT/SIPI cut the current run slice short (see kick()); in_hlt before that. */
  private kicked: { wasHalted: boolean } | null = null;
  /** True while hooks.onChunk runs: v86's main loop checks for interrupts right after it. */
  private atChunkEnd = false;
  /** EFLAGS.IF (bit 1 of the flags' second byte) hidden so a kick made at a chunk end ends the slice. */
  private hiddenIf = 0;
  private mmio: RoutedMmio | null = null;
  private ports: RoutedPorts | null = null;
  private readonly ex: Ex;
  private readonly route: WebAssembly.Global;
  private readonly bsp: WebAssembly.Global;
  private readonly defer: WebAssembly.Global;
  private readonly apicClock: WebAssembly.Global;
  private readonly apicTimerLag: (() => number) | undefined;
  private readonly tscClock: (() => bigint) | undefined;
  /** v86's own stop_idling (makes an idle run loop tick now); the wasm's calls go through a wrapper. */
  private readonly stopIdling: () => void;

  /** Creates the Vcpu with the interrupt imports bound to the returned object. */
  static async create(options: VcpuInterruptsOptions): Promise<VcpuInterrupts> {
    checkApicId(options.apicId);
    if (options.role !== "bsp" && options.role !== "ap") throw new EngineError(`role must be "bsp" or "ap", got ${JSON.stringify(options.role)}`);
    let self: VcpuInterrupts | undefined;
    // Until the object exists (v86's own init), behave like stock v86.
    const imports: Record<string, WasmImport> = {
      [IMPORT_APIC_WRITE]: (reg, value) => (self ? self.apicWrite(reg, value) : 1),
      [IMPORT_IOAPIC_SEND]: (irq, low, high) => (self ? self.ioapicSend(irq, low, high) : 1),
      [IMPORT_EOI]: (vector) => (self ? self.eoi(vector) : 1),
      [IMPORT_IRQ_CHECK]: () => self?.irqCheck(),
      [IMPORT_MMIO_READ]: (addr, size) => self!.routedMmio().read(addr >>> 0, size),
      [IMPORT_MMIO_WRITE]: (addr, size, value) => self!.routedMmio().write(addr >>> 0, size, value >>> 0),
      [IMPORT_PIO_READ8]: (port) => self!.routedPorts().read8(port),
      [IMPORT_PIO_WRITE8]: (port, value) => self!.routedPorts().write8(port, value & 0xff),
      // v86's clock (performance.now, as its JS devices read it), with a look at hooks.pending;
      // the APIC's own register code reads the APIC timer's clock.
      microtick: () => {
        if (!self) return performance.now();
        self.clockRead();
        return self.apicClock.value !== 0 ? self.apicNow() : performance.now();
      },
      ...options.imports,
    };
    const vcpu = await Vcpu.create({ ...options, imports });
    self = new VcpuInterrupts(vcpu, options);
    return self;
  }

  private constructor(
    readonly vcpu: Vcpu,
    options: VcpuInterruptsOptions,
  ) {
    this.hooks = options.hooks ?? {};
    this.tscClock = options.tscClock;
    const ex = vcpu.wasm.exports as unknown as Ex;
    this.ex = ex;
    for (const name of [EXPORT_APIC_DELIVER, EXPORT_CALL_INTERRUPT_VECTOR, EXPORT_IOAPIC_EOI, EXPORT_PIC_READ8, EXPORT_PIC_WRITE8, "read8", "read16", "read32s", "write32", "reset_cpu", "read_tsc", "set_tsc", "get_apic_addr", "get_ioapic_addr"]) {
      if (typeof ex[name] !== "function") throw new EngineError(`the wasm lacks the export ${name}; it was not built by the current instrumentation (ensureInstrumentedWasm())`);
    }
    const route = vcpu.wasm.exports[EXPORT_ROUTE];
    const bsp = vcpu.wasm.exports[EXPORT_BSP];
    const defer = vcpu.wasm.exports[EXPORT_DEFER_IRQS];
    const apicClock = vcpu.wasm.exports[EXPORT_APIC_CLOCK];
    if (!(route instanceof WebAssembly.Global) || !(bsp instanceof WebAssembly.Global) || !(defer instanceof WebAssembly.Global) || !(apicClock instanceof WebAssembly.Global)) {
      throw new EngineError(`the wasm lacks the ${EXPORT_ROUTE}/${EXPORT_BSP}/${EXPORT_DEFER_IRQS}/${EXPORT_APIC_CLOCK} globals`);
    }
    this.apicClock = apicClock;
    this.apicTimerLag = options.apicTimerLag;
    defer.value = 1;
    this.defer = defer;
    this.route = route;
    this.bsp = bsp;
    // The static struct addresses the pass checked must also be where v86 says its APIC lives.
    if (ex.get_apic_addr() !== MEM.apic || ex.get_ioapic_addr() !== MEM.ioapic) {
      throw new EngineError(`v86's APIC/IOAPIC are at ${ex.get_apic_addr()}/${ex.get_ioapic_addr()}, expected ${MEM.apic}/${MEM.ioapic}`);
    }
    const cpu = (vcpu.emulator as unknown as V86Internals).v86.cpu;
    const mainLoop = cpu.main_loop;
    cpu.main_loop = () => {
      this.drainPending(true);
      if (this.state === "wait-for-sipi") return IDLE_MS;
      if (this.irqsPending) {
        this.irqsPending = false;
        this.ex.handle_irqs();
      }
      this.mainLoopDepth++;
      let t: number;
      try {
        t = mainLoop();
      } finally {
        this.mainLoopDepth--;
        if (this.hiddenIf) {
          const d = this.dv();
          d.setUint8(MEM.flags + 1, d.getUint8(MEM.flags + 1) | this.hiddenIf);
          this.hiddenIf = 0;
          this.irqsPending = true;
        }
      }
      if (this.kicked) {
        // No instruction ran after the kick; the queued event (which ends a HLT anyway) runs next.
        if (!this.kicked.wasHalted) this.dv().setUint8(MEM.inHlt, 0);
        this.kicked = null;
        return 0;
      }
      return t;
    };
    // The wasm calls stop_idling exactly when it delivers an interrupt to a CPU whose in_hlt is
    // set, just before clearing it. Mid-slice, with a kick in effect, that delivery is what the kick
    // was for: it is used up (else it would linger to the slice's end, hiding later kicks and
    // undoing a HLT the guest runs meanwhile).
    const stopIdling = cpu.stop_idling;
    this.stopIdling = () => stopIdling.call(cpu);
    cpu.stop_idling = () => {
      if (this.mainLoopDepth > 0) this.kicked = null;
      this.stopIdling();
    };
    // v86 calls run_hardware_timers (a JS import) in its main loop after every chunk of
    // instructions, and from HLT (which sets in_hlt first): with in_hlt clear it is a chunk end.
    // The APIC timer runs on apicNow(); its register code gets it through microtick (gw_apic_clock).
    const apicTimer = cpu.apic_timer;
    if (typeof apicTimer !== "function") throw new EngineError("v86's CPU lacks apic_timer; re-audit vcpu-interrupts.ts");
    const lag = this.apicTimerLag;
    if (lag) cpu.apic_timer = (now) => apicTimer.call(cpu, now - lag());
    const runTimers = cpu.run_hardware_timers;
    cpu.run_hardware_timers = (acpi, now) => {
      const t = runTimers.call(cpu, acpi, now);
      if (this.mainLoopDepth > 0 && this.kicked === null && !this.vcpu.inFault && this.dv().getUint8(MEM.inHlt) === 0) this.chunkEnd();
      return t;
    };
    this.apicId = options.apicId;
    this.bsp.value = options.role === "bsp" ? 1 : 0;
    // Power-on state of IA32_APIC_BASE: enabled (v86 starts with EN clear and relies on SeaBIOS to
    // set it, which never runs on an AP or under a direct boot). INIT leaves the MSR alone.
    this.dv().setUint8(MEM.apicEnabled, 1);
    if (options.role === "ap") this.init();
    else if (this.tscClock) this.tsc = this.tscClock();
  }

  // --- identity and addressing ----------------------------------------------------------------

  get apicId(): number {
    return this.dv().getUint32(MEM.apic + APIC.id, true) >>> 24;
  }

  /** Sets the APIC ID register (what the guest reads at 0xFEE00020 and in CPUID 1 EBX[31:24]). */
  set apicId(id: number) {
    checkApicId(id);
    this.dv().setUint32(MEM.apic + APIC.id, (id << 24) >>> 0, true);
  }

  /** The register values other nodes need to evaluate logical destinations. */
  get addressing(): ApicAddressing {
    const dv = this.dv();
    return {
      id: dv.getUint32(MEM.apic + APIC.id, true),
      ldr: dv.getUint32(MEM.apic + APIC.localDestination, true),
      dfr: dv.getUint32(MEM.apic + APIC.destinationFormat, true),
    };
  }

  /**
   * The time-stamp counter (what RDTSC returns now). Each v86 instance counts from its own start;
   * a platform aligns the nodes' vCPUs to node 0 by setting it (GiantVM aligns clocks at start).
   */
  get tsc(): bigint {
    return this.ex.read_tsc();
  }

  set tsc(value: bigint) {
    if (typeof value !== "bigint" || value < 0n || value >= 1n << 64n) throw new EngineError(`the TSC must be a bigint in 0..2^64-1, got ${String(value)}`);
    // v86 reads the TSC as now * rate - offset, and its set_tsc(v) sets offset = RDTSC - v, which
    // forgets the old offset: RDTSC then reads v + old offset. (Only the first write after a reset,
    // with offset 0, comes out right; each INIT of an AP pushed its TSC seconds ahead.) So pass
    // v - offset, the offset recovered from v86's own clock (performance.now(), this thread's).
    const offset = (BigInt(Math.round(performance.now() * TSC_PER_MS)) - this.ex.read_tsc()) & U64;
    const arg = (value - offset) & U64;
    this.ex.set_tsc(Number(arg & 0xffffffffn), Number(arg >> 32n));
  }

  /**
   * Whether interrupts that become deliverable through an APIC/IOAPIC write are taken at the next
   * block boundary (default, see README: v86's in-instruction delivery lost a handler under the
   * SMP self-test) or, as stock v86 does, inside the writing instruction (lower self-IPI latency).
   */
  get deferInterruptChecks(): boolean {
    return this.defer.value !== 0;
  }

  set deferInterruptChecks(on: boolean) {
    this.defer.value = on ? 1 : 0;
  }

  get runState(): VcpuRunState {
    return this.state;
  }

  /** True when no guest instruction is in progress on this vCPU (state may be read and written). */
  get atBoundary(): boolean {
    return this.mainLoopDepth === 0 && !this.vcpu.inFault;
  }

  /**
   * Runs device code on another node's behalf (a forwarded port or MMIO access) at any time, also
   * while this vCPU waits inside one of its own instructions for a page. v86's devices raise IRQs
   * through device_raise_irq, and PIC port writes end the same way: both call handle_irqs, which
   * enters a handler at once. Mid-instruction that pushes an interrupt frame over a half-done
   * instruction (Linux died with "Fatal exception in interrupt" in an IRQ entry stub). So there IF
   * is hidden from v86 meanwhile, and what became pending is taken right after the current block.
   */
  deviceAccess<T>(access: () => T): T {
    if (this.atBoundary) return access();
    const dv = this.dv();
    const flagsByte = MEM.flags + 1; // EFLAGS.IF is bit 9
    const ifBit = dv.getUint8(flagsByte) & 2;
    dv.setUint8(flagsByte, dv.getUint8(flagsByte) & ~2);
    try {
      return access();
    } finally {
      const d = this.dv();
      d.setUint8(flagsByte, d.getUint8(flagsByte) | ifBit);
      if (ifBit) this.takeIrqsSoon();
    }
  }

  /**
   * Drives an ISA IRQ line from a device of ours on this node (the CPU hotplug device's SCI), at
   * any time: through deviceAccess, and the vCPU is woken if it idles.
   */
  setIsaIrq(irq: number, level: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new EngineError(`an ISA IRQ is 0..15, got ${JSON.stringify(irq)}`);
    const cpu = (this.vcpu.emulator as unknown as V86Internals).v86.cpu;
    this.deviceAccess(() => (level ? cpu.device_raise_irq(irq) : cpu.device_lower_irq(irq)));
    this.wake();
  }

  // --- incoming -------------------------------------------------------------------------------

  /**
   * Delivers an interrupt to this vCPU's APIC. Fixed vectors are posted to the APIC at once (v86
   * takes them at its next instruction boundary with IF set). NMI, INIT and start-up take effect
   * at once when no instruction is in progress (called from the event loop), else right after the
   * current block of instructions. Callable from anywhere, including hooks and fault handlers.
   */
  inject(msg: IncomingInterrupt): void {
    switch (msg?.kind) {
      case "fixed":
        if (!Number.isInteger(msg.vector) || msg.vector < 16 || msg.vector > 255) {
          throw new EngineError(`a fixed interrupt needs a vector in 16..255, got ${JSON.stringify(msg.vector)}`);
        }
        if (msg.trigger !== "edge" && msg.trigger !== "level") throw new EngineError(`trigger must be "edge" or "level", got ${JSON.stringify(msg.trigger)}`);
        if (this.state === "wait-for-sipi") {
          // A CPU waiting for SIPI responds only to INIT and start-up (SDM 10.4.7.3).
          this.stats.dropped.push(`fixed vector 0x${msg.vector.toString(16)} sent to a CPU waiting for SIPI`);
          return;
        }
        this.ex[EXPORT_APIC_DELIVER](MEM.apic, msg.vector, 0, msg.trigger === "level" ? 1 : 0);
        // v86 would look at IRR only after its next run of up to 100k instructions: take it at
        // the start of the next slice, or (mid-instruction) right after the current block.
        this.takeIrqsSoon();
        break;
      case "startup":
        if (!Number.isInteger(msg.vector) || msg.vector < 0 || msg.vector > 255) {
          throw new EngineError(`a start-up IPI needs a vector (start page) in 0..255, got ${JSON.stringify(msg.vector)}`);
        }
        this.pending.push(msg);
        this.runOrKick();
        break;
      case "nmi":
        // Delivering it pushes onto the guest's stack, which may fault and move pages: only in
        // this vCPU's own turn (next slice), never synchronously from some other caller.
        this.pending.push(msg);
        this.kick();
        break;
      case "init":
        this.pending.push(msg);
        this.runOrKick();
        break;
      case "init-deassert":
        break; // no effect since the Pentium 4 (SDM 10.6.1); counted only
      default:
        throw new EngineError(`unknown incoming interrupt ${JSON.stringify(msg)}`);
    }
    this.stats.injected[msg.kind]++;
    this.wake();
  }

  /**
   * An EOI for a level-triggered `vector` that another vCPU's APIC forwarded to this node's IOAPIC
   * (clears remote IRR and re-sends if the input is still asserted). Like a device raising an IRQ
   * from a port handler, it takes effect at once, unless v86 is inside its APIC/IOAPIC code (a
   * hook called from there): then at the next boundary between run slices.
   */
  ioapicEoi(vector: number): void {
    if (!Number.isInteger(vector) || vector < 16 || vector > 255) throw new EngineError(`an EOI needs a vector in 16..255, got ${JSON.stringify(vector)}`);
    this.pendingEois.push(vector);
    const dv = this.dv();
    if (dv.getUint8(MEM.apicLock) === 0 && dv.getUint8(MEM.ioapicLock) === 0) this.drainEois();
    else this.kick();
    this.wake();
  }

  // --- control --------------------------------------------------------------------------------

  /** Stops the vCPU at an instruction boundary (resolves once v86 has stopped). */
  async pause(): Promise<void> {
    const v86 = (this.vcpu.emulator as unknown as V86Internals).v86;
    if (!v86.running) return;
    const stopped = this.vcpu.emulator.stop();
    this.stopIdling(); // an idle loop (halted, waiting for SIPI) would otherwise notice only later
    await stopped;
  }

  /** Resumes a paused vCPU (an AP waiting for SIPI keeps waiting). */
  async resume(): Promise<void> {
    await this.vcpu.emulator.run();
  }

  getState(): CpuState {
    this.checkBoundary("read");
    return readCpuState(this.vcpu.wasm.memory, this.ex);
  }

  setState(state: CpuState): void {
    this.checkBoundary("write");
    writeCpuState(this.vcpu.wasm.memory, this.ex, state);
  }

  /** Routes the IOAPIC's MMIO window (0xFEC00000, 32 bytes) to `handler`, or back to v86 (null). */
  routeIoapic(handler: RoutedMmio | null): void {
    this.mmio = handler;
    this.setRoute(ROUTE_IOAPIC, handler !== null);
  }

  /** Routes the in-wasm PIC's ports (0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1) to `handler`, or back (null). */
  routePic(handler: RoutedPorts | null): void {
    this.ports = handler;
    this.setRoute(ROUTE_PIC, handler !== null);
  }

  /**
   * This node's own IOAPIC and PIC (inside v86's wasm), to serve the accesses other nodes route
   * here (node 0). Call at an instruction boundary of this node's vCPU, like any device access.
   */
  readonly devices: RoutedMmio & RoutedPorts = {
    read: (address, size) => {
      this.checkDeviceAccess(address, size);
      const a = address >>> 0;
      return (size === 1 ? this.ex.read8(a) : size === 2 ? this.ex.read16(a) : this.ex.read32s(a)) >>> 0;
    },
    write: (address, size, value) => {
      this.checkDeviceAccess(address, size);
      // v86's IOAPIC takes only dword writes (narrower ones reach its JS side, which drops them).
      if (size === 4) this.ex.write32(address >>> 0, value | 0);
    },
    read8: (port) => {
      this.checkPicPort(port);
      return this.ex[EXPORT_PIC_READ8](port) & 0xff;
    },
    write8: (port, value) => {
      this.checkPicPort(port);
      this.ex[EXPORT_PIC_WRITE8](port, value & 0xff);
    },
  };

  // --- wasm imports ---------------------------------------------------------------------------

  private apicWrite(reg: number, value: number): number {
    if (reg !== 0x300) {
      const name: ApicRegister = reg === 0x20 ? "id" : reg === 0xd0 ? "ldr" : "dfr";
      const now = this.addressing;
      this.hooks.onApicRegister?.(name, name === "id" ? now.id : name === "ldr" ? now.ldr : now.dfr, now);
      return 1;
    }
    let msg: OutgoingInterrupt;
    try {
      msg = decodeIcr(value, this.dv().getUint32(MEM.apic + APIC.icr1, true), this.addressing.id);
    } catch (err) {
      this.stats.dropped.push((err as Error).message);
      return 0;
    }
    this.stats.sent++;
    return this.decide(msg);
  }

  private ioapicSend(irq: number, low: number, high: number): number {
    let msg: OutgoingInterrupt;
    try {
      msg = decodeRedirection(irq, low, high);
    } catch (err) {
      this.stats.dropped.push((err as Error).message);
      return 0;
    }
    this.stats.ioapicSent++;
    return this.decide(msg);
  }

  /** Asks the hook; local fixed/lowest interrupts are left to v86 (verdict 1), others are injected here. */
  private decide(msg: OutgoingInterrupt): number {
    const local = this.hooks.onSend ? this.hooks.onSend(msg) : includes(msg, this.addressing);
    if (!local) return 0;
    this.stats.sentLocal++;
    const incoming = toIncoming(msg);
    if (incoming === null) return 0;
    if (incoming.kind === "fixed") {
      if (msg.vector < 16) {
        this.stats.dropped.push(`illegal vector ${msg.vector} in ${msg.source} interrupt`);
        return 0;
      }
      return 1;
    }
    this.inject(incoming);
    return 0;
  }

  /** The local APIC timer's clock: performance.now() less the time hidden from it (apicTimerLag). */
  apicNow(): number {
    return performance.now() - (this.apicTimerLag?.() ?? 0);
  }

  /** When the guest last read the clock, and how many reads in a row came within SPIN_GAP_MS of the one before. */
  private lastClockRead = 0;
  private fastClockReads = 0;

  /**
   * At each guest clock read inside a slice (v86's microtick): end the slice when a peer's frame
   * waits (hooks.pending), or, with hooks.spinWait, block after SPIN_READS fast reads in a row.
   */
  private clockRead(): void {
    if (this.mainLoopDepth === 0 || this.atChunkEnd || this.kicked !== null || this.vcpu.inFault) return;
    if (this.hooks.pending?.()) return this.kick();
    const spinWait = this.hooks.spinWait;
    if (!spinWait) return;
    const now = performance.now();
    if (now - this.lastClockRead >= SPIN_GAP_MS) this.fastClockReads = 0;
    else if (++this.fastClockReads >= SPIN_READS) {
      this.stats.spinWaits++;
      spinWait(SPIN_WAIT_MS);
      // The block ends the slice, as a HLT would: v86 runs its timers (the APIC timer's tick is
      // due at a chunk end, and a chunk of a spin with a block per read lasts seconds) and the
      // platform serves what came. The next slice spins SPIN_READS reads again before it blocks.
      this.kick();
      return;
    }
    this.lastClockRead = now;
  }

  private irqCheck(): void {
    const dv = this.dv();
    let pending = 0;
    for (let i = 0; i < 8; i++) pending |= dv.getUint32(MEM.apic + APIC.irr + 4 * i, true);
    if (!pending) return;
    this.takeIrqsSoon(); // from a JS caller (devices.write): taken at the start of the next slice
  }

  private eoi(vector: number): number {
    this.stats.eois++;
    return this.hooks.onEoi ? (this.hooks.onEoi(vector) ? 1 : 0) : 1;
  }

  private routedMmio(): RoutedMmio {
    if (!this.mmio) throw new EngineError("the IOAPIC is routed but no handler is set");
    return this.mmio;
  }

  private routedPorts(): RoutedPorts {
    if (!this.ports) throw new EngineError("the PIC ports are routed but no handler is set");
    return this.ports;
  }

  // --- internals ------------------------------------------------------------------------------

  /**
   * Runs queued NMI/INIT/SIPI/EOIs in order. `inOwnTurn`: called by this vCPU's main loop. From
   * elsewhere (inject at a boundary) only events that touch no guest memory run now: a queued NMI
   * (and all behind it) waits for the vCPU's own turn.
   */
  private drainPending(inOwnTurn: boolean): void {
    if (!inOwnTurn && this.pending.some((m) => m.kind === "nmi")) {
      this.wake();
      return;
    }
    this.drainEois();
    while (this.pending.length) {
      const msg = this.pending.shift()!;
      switch (msg.kind) {
        case "nmi":
          // An AP waiting for SIPI ignores NMI. v86 does not model NMI blocking until IRET.
          if (this.state !== "running") break;
          this.dv().setInt32(MEM.previousIp, this.dv().getInt32(MEM.instructionPointer, true), true);
          this.dv().setUint8(MEM.inHlt, 0);
          this.ex[EXPORT_CALL_INTERRUPT_VECTOR](2, 0, 0, 0);
          break;
        case "init":
          this.init();
          break;
        case "startup":
          if (this.state !== "wait-for-sipi") break; // a running CPU ignores SIPI
          writeCpuState(this.vcpu.wasm.memory, this.ex, startupState(readCpuState(this.vcpu.wasm.memory, this.ex), msg.vector));
          if (this.tscClock) this.tsc = this.tscClock();
          this.state = "running";
          break;
        case "init-deassert":
        case "fixed":
          break;
      }
    }
  }

  private drainEois(): void {
    while (this.pendingEois.length) this.ex[EXPORT_IOAPIC_EOI](MEM.apic, this.pendingEois.shift()!);
  }

  /** INIT: CPU reset (keeping the time-stamp counter) and APIC reset (keeping its ID); then wait for SIPI. */
  private init(): void {
    const tsc = this.ex.read_tsc();
    this.ex.reset_cpu();
    this.tsc = tsc;
    const dv = this.dv();
    const a = MEM.apic;
    const id = dv.getUint32(a + APIC.id, true);
    for (let off = 0; off < APIC.size; off += 4) dv.setUint32(a + off, 0, true);
    dv.setUint32(a + APIC.id, id, true);
    dv.setUint32(a + APIC.timerDividerShift, 1, true);
    for (const lvt of [APIC.lvtTimer, APIC.lvtPerfCounter, APIC.lvtInt0, APIC.lvtInt1, APIC.lvtError, APIC.lvtThermal]) dv.setUint32(a + lvt, 0x10000, true);
    dv.setUint32(a + APIC.spuriousVector, 0xff, true);
    dv.setUint32(a + APIC.destinationFormat, 0xffffffff, true);
    this.state = "wait-for-sipi";
  }

  private checkDeviceAccess(address: number, size: number): void {
    const a = address >>> 0;
    if (size !== 1 && size !== 2 && size !== 4) throw new EngineError(`device access size must be 1, 2 or 4, got ${JSON.stringify(size)}`);
    if (a < IOAPIC_MMIO_BASE || a + size > IOAPIC_MMIO_BASE + IOAPIC_MMIO_SIZE) {
      throw new EngineError(`0x${a.toString(16)} is not in the IOAPIC window 0x${IOAPIC_MMIO_BASE.toString(16)}-0x${(IOAPIC_MMIO_BASE + IOAPIC_MMIO_SIZE - 1).toString(16)}`);
    }
    this.checkUnlocked();
  }

  private checkPicPort(port: number): void {
    if (!(PIC_PORTS as readonly number[]).includes(port)) throw new EngineError(`port 0x${Number(port).toString(16)} is not one of the in-wasm PIC's ports`);
    this.checkUnlocked();
  }

  private checkUnlocked(): void {
    const dv = this.dv();
    if (dv.getUint8(MEM.apicLock) || dv.getUint8(MEM.ioapicLock)) {
      throw new EngineError("this vCPU is inside v86's APIC/IOAPIC code; serve device accesses at an instruction boundary");
    }
  }

  private checkBoundary(what: string): void {
    if (!this.atBoundary) {
      throw new EngineError(`cannot ${what} the CPU state in the middle of an instruction (from a hook or fault handler); do it between run slices or after pause()`);
    }
  }

  private setRoute(flag: number, on: boolean): void {
    this.route.value = on ? this.route.value | flag : this.route.value & ~flag;
  }

  /**
   * Called from inside a run slice (a hook, a port handler, a fault handler), an NMI/INIT/SIPI would
   * wait for the slice to end (at least 1 ms and 100k instructions in v86). Setting in_hlt makes
   * v86's loop stop after the current block; the main_loop wrapper then undoes it and runs the event.
   */
  private runOrKick(): void {
    if (this.atBoundary) this.drainPending(false);
    else this.kick();
  }

  /**
   * Pending interrupts (IRR set, or a device IRQ raised while IF was hidden) are taken: mid-instruction
   * right after the current block (kick), at a chunk end by v86's own check that follows it, else
   * at the start of the next slice.
   */
  private takeIrqsSoon(): void {
    if (this.mainLoopDepth > 0 && !this.atChunkEnd) this.kick();
    else this.irqsPending = true;
  }

  /**
   * At a chunk end: runs hooks.onChunk. A kick made there (NMI/INIT/SIPI), or events still queued
   * because an interrupt delivery used up their kick, end the slice.
   */
  private chunkEnd(): void {
    if (this.hooks.onChunk) {
      this.atChunkEnd = true;
      try {
        this.vcpu.betweenInstructions(() => this.hooks.onChunk!());
      } finally {
        this.atChunkEnd = false;
      }
    }
    if (!this.kicked && (this.pending.length > 0 || this.pendingEois.length > 0)) this.kick();
    if (this.kicked) {
      // main_loop checks for interrupts next: taking a pending fixed one would clear in_hlt and
      // run on with the kick used up. With IF hidden it returns; the wrapper restores IF.
      const d = this.dv();
      this.hiddenIf = d.getUint8(MEM.flags + 1) & 2;
      d.setUint8(MEM.flags + 1, d.getUint8(MEM.flags + 1) & ~2);
    }
  }

  private kick(): void {
    if (this.mainLoopDepth === 0 || this.kicked) return;
    this.kicked = { wasHalted: this.dv().getUint8(MEM.inHlt) !== 0 };
    this.dv().setUint8(MEM.inHlt, 1);
  }

  /** Makes an idle v86 loop (halted, waiting for SIPI) run its next slice now. */
  private wake(): void {
    const v86 = (this.vcpu.emulator as unknown as V86Internals).v86;
    if (v86.running) this.stopIdling();
  }

  private dv(): DataView {
    return new DataView(this.vcpu.wasm.memory.buffer);
  }
}

function checkApicId(id: unknown): asserts id is number {
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 254) {
    throw new EngineError(`APIC ID must be an integer in 0..254 (255 is the broadcast address), got ${JSON.stringify(id)}`);
  }
}
