// One vCPU: a v86 instance running the instrumented wasm, with per-page access control.
// The interface is documented in src/engine/README.md; the instrumentation in instrument/pass.ts.

import { V86, type V86Options } from "v86";
import {
  EXPORT_AUDIT_SET_RAM,
  EXPORT_GET_MAP_BASE,
  IMPORT_AUDIT,
  EXPORT_QUIET,
  EXPORT_RESTART,
  EXPORT_SET_MAP_BASE,
  EXPORT_WALKING,
  IMPORT_TLB_FAULT,
  MAP_BYTES,
  MEMORY_SIZE_ADDR,
  PAGE_NONE,
  PAGE_RO,
  PAGE_RW,
  PTE_ACCESSED_DIRTY,
  TLB_FAIL,
  TLB_KEEP,
  TLB_RETRY,
} from "./abi.ts";
import { INTERRUPT_IMPORT_DEFAULTS, MEM, type WasmImport } from "./interrupts/abi.ts";
import { auditSiteFunction, type AuditReport } from "./audit-sites.ts";
import type { PortDispatcher } from "./ports.ts";
import { type V86Loop, yieldInThisThread } from "./v86-yield.ts";
import { PAGE_SIZE, type Access, type FaultAccess } from "../protocol/types.ts";

// A page's local access ("none" | "read" | "write") and the access a fault asks for are the
// protocol's own types: the engine's page map holds exactly what the DSM grants.
export { PAGE_SIZE, type Access, type FaultAccess };

/**
 * Where the access came from: `tlb` (a virtual access, instruction fetch or JIT code, caught when
 * v86 fills its TLB), `physical` (v86 touching RAM by physical address: page-table walks,
 * accessed/dirty updates, JS calling cpu.read32s ...), `dma` (v86's JS devices: read_blob/write_blob).
 */
export type FaultCause = "tlb" | "physical" | "dma";

export interface PageFault {
  /** Guest-physical page number (address >>> 12). */
  page: number;
  access: FaultAccess;
  cause: FaultCause;
}

/** What a fault handler grants: the page's new local access, and its bytes when they changed. */
export interface PageGrant {
  access: "read" | "write";
  /** Exactly 4096 bytes; omitted when the local copy is current (for example read-only -> read-write). */
  bytes?: Uint8Array;
}

/**
 * Called synchronously, in the middle of the guest instruction that needs the page. It may block
 * (Atomics.wait in a worker) and, while it waits, call `revoke` for other pages (see README).
 */
export type FaultHandler = (fault: PageFault) => PageGrant;

export interface VcpuStats {
  faults: number;
  faultsByCause: Record<FaultCause, number>;
  revocations: number;
  /** Revocations made while v86 was executing (from a fault or I/O handler): the current instruction starts over. */
  restartRequests: number;
}

export interface VcpuOptions {
  /** The instrumented v86 wasm (ensureInstrumentedWasm()). */
  wasm: Uint8Array | ArrayBuffer;
  /** Passed to v86 unchanged, except `wasm_fn`, which the engine owns. */
  v86: Omit<V86Options, "wasm_fn" | "wasm_path">;
  onFault?: FaultHandler;
  /** Extra `env` imports for other parts of the instrumentation (interrupts/: VcpuInterrupts.create). */
  imports?: Record<string, WasmImport>;
  /**
   * The coherence audit (debug): `wasm` must be the audit build (ensureInstrumentedWasm({ audit:
   * true })) and `report` its site table (readAuditReport). Every guest-RAM access the wasm makes
   * that the page map forbids goes to `onViolation` (default: throw, which stops the vCPU with the
   * violation as its error). v86's JIT is turned off: compiled guest code is not audited.
   */
  audit?: { report: AuditReport; onViolation?: (violation: AuditViolation) => void };
}

/** A guest-RAM access the page map did not allow, caught by the audit build at the access itself. */
export interface AuditViolation {
  page: number;
  /** Guest-physical address of the access (of the page, for a bulk copy or fill). */
  address: number;
  /** Bytes accessed (0: a bulk copy or fill touching this page). */
  bytes: number;
  access: FaultAccess;
  /** The page's local access when it was made. */
  held: Access;
  /** The v86 function that made the access (from the wasm's name section). */
  fn: string;
  site: number;
  /** Linear address (CS base + EIP) of the guest instruction being executed (v86's previous_ip). */
  eip: number;
  /** A page was taken away inside this instruction and its restart is still pending. */
  restartPending: boolean;
}

export class AuditError extends Error {
  constructor(readonly violation: AuditViolation) {
    const v = violation;
    super(
      `coherence audit: ${v.access} of ${v.bytes || "a span of"} byte(s) at guest-physical 0x${v.address.toString(16)} (page 0x${v.page.toString(16)}, held "${v.held}") ` +
        `by ${v.fn}, guest eip 0x${(v.eip >>> 0).toString(16)}${v.restartPending ? ", restart pending" : ""}`,
    );
    this.name = "AuditError";
  }
}

const ACCESS_BYTE: Record<Access, number> = { write: PAGE_RW, read: PAGE_RO, none: PAGE_NONE };
const BYTE_ACCESS: Access[] = ["write", "read", "none"];

// v86 keeps the legacy VGA window (0xA0000-0xBFFFF) as MMIO even though it lies below memory_size.
const VGA_FIRST_PAGE = 0xa0000 >>> 12;
const VGA_END_PAGE = 0xc0000 >>> 12;

type Env = Record<string, (...args: number[]) => number | void>;

interface V86Cpu {
  main_loop(): number;
  read_blob(offset: number, length: number): Uint8Array;
  write_blob(blob: ArrayLike<number>, offset: number): void;
  mem8: Uint8Array;
}

export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
  }
}

export class Vcpu {
  readonly emulator: V86;
  readonly stats: VcpuStats = { faults: 0, faultsByCause: { tlb: 0, physical: 0, dma: 0 }, revocations: 0, restartRequests: 0 };
  onFault: FaultHandler | undefined;
  /** Set when a hook threw inside v86: the vCPU stopped and cannot be resumed. */
  error: Error | undefined;
  onError: ((error: Error) => void) | undefined;

  private exports!: WebAssembly.Exports & Record<string, (...a: number[]) => number>;
  private memory!: WebAssembly.Memory;
  private mapBase = 0;
  private mem8Base = -1;
  private buf: ArrayBuffer | undefined;
  private u8 = new Uint8Array(0);
  private faultDepth = 0;
  /** True while v86 runs guest code (inside main_loop): any callback is mid-instruction. */
  private executing = false;
  private quiet!: WebAssembly.Global;
  private restart!: WebAssembly.Global;
  private walking!: WebAssembly.Global;
  /** Code ranges to drop once v86's JIT no longer holds its lock (see EXPORT_QUIET). */
  private pendingDirty: [number, number][] = [];
  private readonly loaded: Promise<void>;
  private readonly extraImports: Record<string, WasmImport>;
  private readonly audit: VcpuOptions["audit"];

  private constructor(options: VcpuOptions) {
    this.onFault = options.onFault;
    this.audit = options.audit;
    this.extraImports = { ...INTERRUPT_IMPORT_DEFAULTS, ...options.imports };
    const wasm = options.wasm;
    let loadedResolve!: () => void;
    let loadedReject!: (e: unknown) => void;
    this.loaded = new Promise((res, rej) => ((loadedResolve = res), (loadedReject = rej)));
    this.emulator = new V86({
      ...options.v86,
      ...(options.audit ? { disable_jit: true } : {}),
      // v86 does not handle a rejection here, so report it through create() and stay pending.
      wasm_fn: (imports: WebAssembly.Imports) =>
        this.instantiate(wasm, imports).catch((err: unknown) => {
          loadedReject(err);
          return new Promise<never>(() => {});
        }),
    } as V86Options);
    this.emulator.add_listener("emulator-loaded", () => {
      this.hookDevices();
      yieldInThisThread((this.emulator as unknown as { v86: V86Loop }).v86);
      loadedResolve();
    });
  }

  /** Creates the vCPU and resolves once v86 has loaded (and started, with `autostart`). */
  static async create(options: VcpuOptions): Promise<Vcpu> {
    if (!(options.wasm instanceof Uint8Array) && !(options.wasm instanceof ArrayBuffer)) {
      throw new EngineError("VcpuOptions.wasm must be the instrumented wasm's bytes (Uint8Array or ArrayBuffer)");
    }
    const v = new Vcpu(options);
    await v.loaded;
    return v;
  }

  /** Bytes of guest RAM (v86's memory_size). */
  get memorySize(): number {
    return new DataView(this.view().buffer).getUint32(MEMORY_SIZE_ADDR, true);
  }

  get pageCount(): number {
    return this.memorySize / PAGE_SIZE;
  }

  pageAccess(page: number): Access {
    this.checkPage(page);
    return BYTE_ACCESS[this.view()[this.mapBase + page]];
  }

  /**
   * Sets a page's local access without moving bytes (setup, or an upgrade the caller knows is
   * current). A downgrade takes effect at once: no stale translation or compiled code remains.
   */
  setPageAccess(page: number, access: Access): void {
    this.checkPage(page);
    if (!(access in ACCESS_BYTE)) throw new EngineError(`unknown page access ${JSON.stringify(access)}`);
    const before = this.view()[this.mapBase + page];
    const after = ACCESS_BYTE[access];
    this.view()[this.mapBase + page] = after;
    if (after > before) {
      this.flushPage(page, after === PAGE_NONE);
      // Taken away in the middle of an instruction (a fault or I/O handler serving a request
      // while it waits): that instruction may hold a translation of this page; make it start over.
      if (this.executing) {
        this.restart.value = 1;
        this.stats.restartRequests++;
      }
    }
  }

  /** Sets the access of many pages at once with a single TLB flush (e.g. "all pages none"). */
  setAllPages(access: Access, predicate: (page: number) => boolean = () => true): void {
    if (!(access in ACCESS_BYTE)) throw new EngineError(`unknown page access ${JSON.stringify(access)}`);
    const u8 = this.view();
    const b = ACCESS_BYTE[access];
    for (let p = 0; p < this.pageCount; p++) {
      if (p >= VGA_FIRST_PAGE && p < VGA_END_PAGE) continue;
      if (predicate(p)) u8[this.mapBase + p] = b;
    }
    this.call("full_clear_tlb");
    if (b === PAGE_NONE) this.dirtyCode(0, this.memorySize);
  }

  /**
   * Takes a page away (read-write -> read-only or no-access) and returns its current bytes.
   * Call it at an instruction boundary (whenever v86 is not executing) or from inside a fault
   * handler while it waits; either way no TLB entry or compiled code for the page survives.
   */
  revoke(page: number, to: "read" | "none"): Uint8Array {
    this.checkPage(page);
    if (to !== "read" && to !== "none") throw new EngineError(`revoke target must be "read" or "none", got ${JSON.stringify(to)}`);
    const bytes = this.readPage(page);
    this.setPageAccess(page, to);
    this.stats.revocations++;
    return bytes;
  }

  /** A copy of the page's local bytes (whatever its access). */
  readPage(page: number): Uint8Array {
    this.checkPage(page);
    const at = this.mem8Base + page * PAGE_SIZE;
    return this.view().slice(at, at + PAGE_SIZE);
  }

  /** Overwrites the page's local bytes (drops compiled code for it); its access is unchanged. */
  writePage(page: number, bytes: Uint8Array): void {
    this.checkPage(page);
    if (!(bytes instanceof Uint8Array) || bytes.length !== PAGE_SIZE) {
      throw new EngineError(`page bytes must be a Uint8Array of ${PAGE_SIZE} bytes, got ${bytes?.length}`);
    }
    this.view().set(bytes, this.mem8Base + page * PAGE_SIZE);
    this.dirtyCode(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  }

  /** The instrumented module's exports and memory, for other engine parts (interrupts/). */
  get wasm(): { exports: WebAssembly.Exports; memory: WebAssembly.Memory } {
    return { exports: this.exports, memory: this.memory };
  }

  /** v86's port dispatcher for this vCPU (ports.ts): v86's own object, so changes to it take effect at once. */
  get ports(): PortDispatcher {
    return (this.emulator as unknown as { v86: { cpu: { io: PortDispatcher } } }).v86.cpu.io;
  }

  /**
   * Sends to the guest's first UART (COM1, v86's serial0): bytes as they are, a string as its
   * character codes (each 0..255), one byte per character.
   */
  sendSerial(data: string | Uint8Array): void {
    if (typeof data === "string") this.emulator.serial0_send(data);
    else this.emulator.serial_send_bytes(0, data);
  }

  /** Calls `listener` with every byte the guest writes to its first UART (COM1); returns what stops it. */
  onSerialOutput(listener: (byte: number) => void): () => void {
    this.emulator.add_listener("serial0-output-byte", listener);
    return () => this.emulator.remove_listener("serial0-output-byte", listener);
  }

  /** True when this vCPU runs the coherence audit (the audit build, armed at v86's RAM). */
  get auditArmed(): boolean {
    return this.audit !== undefined && this.mem8Base >= 0;
  }

  /** True while a fault handler of this vCPU is running (inside a guest instruction). */
  get inFault(): boolean {
    return this.faultDepth > 0;
  }

  /**
   * Runs `fn` at an instruction boundary inside a run slice (between two of v86's instruction
   * chunks: no instruction in progress, no JIT code on the stack). Pages it revokes then need no
   * instruction restart, as between slices. Refused inside a fault handler (an instruction is in progress there).
   */
  betweenInstructions<T>(fn: () => T): T {
    if (this.faultDepth > 0) throw new EngineError("betweenInstructions called from inside a fault handler, where an instruction is in progress");
    const was = this.executing;
    this.executing = false;
    try {
      return fn();
    } finally {
      this.executing = was;
    }
  }

  async destroy(): Promise<void> {
    await this.emulator.destroy();
  }

  // --- internals -------------------------------------------------------------------------------

  private async instantiate(wasm: Uint8Array | ArrayBuffer, imports: WebAssembly.Imports): Promise<WebAssembly.Exports> {
    const env = imports.env as Env;
    const orig = { ...env };
    Object.assign(env, this.extraImports);
    const ram = (addr: number) => addr < this.memorySize && !(addr >= 0xa0000 && addr < 0xc0000);

    // The RAM-bound check now also sends RAM pages the node does not hold (map byte != 0) here.
    env.mmap_read8 = (addr: number) => {
      addr >>>= 0;
      if (!ram(addr)) return orig.mmap_read8(addr);
      this.ensure(addr, 1, "read", "physical");
      return this.view()[this.mem8Base + addr];
    };
    env.mmap_read32 = (addr: number) => {
      addr >>>= 0;
      if (!ram(addr)) return orig.mmap_read32(addr);
      this.ensure(addr, 4, "read", "physical");
      const u8 = this.view();
      const a = this.mem8Base + addr;
      return u8[a] | (u8[a + 1] << 8) | (u8[a + 2] << 16) | (u8[a + 3] << 24);
    };
    const writer = (name: string, size: number) => (addr: number, ...words: number[]) => {
      addr >>>= 0;
      if (!ram(addr)) return orig[name](addr, ...words);
      const fresh = this.ensure(addr, size, "write", "physical");
      const u8 = this.view();
      const a = this.mem8Base + addr;
      if (fresh && size === 1 && this.walking.value) {
        // A page walk read this PTE before the table came back with newer bytes: its byte was
        // computed from the old entry. Set only the accessed/dirty bits, like the CPU's atomic
        // update would have (the instruction restarts if the entry changed meaning).
        u8[a] |= words[0] & PTE_ACCESSED_DIRTY;
        this.dirtyCode(addr, addr + 1);
        return;
      }
      for (let i = 0; i < size; i++) u8[a + i] = words[i >> 2] >>> ((i & 3) * 8);
      this.dirtyCode(addr, addr + size);
    };
    env.mmap_write8 = writer("mmap_write8", 1);
    env.mmap_write16 = writer("mmap_write16", 2);
    env.mmap_write32 = writer("mmap_write32", 4);
    env.mmap_write64 = writer("mmap_write64", 8);
    env.mmap_write128 = writer("mmap_write128", 16);

    // A TLB fill landed on a page that is not held for this access: fault it in, then v86 walks
    // again. A walk without side effects (JIT analysis) must not fault: it fails instead, and
    // v86's JIT then leaves that page out of the code it compiles.
    env[IMPORT_TLB_FAULT] = (virt: number, entry: number, forWriting: number, sideEffects: number) => {
      const phys = ((((entry & ~0xfff) ^ (virt & ~0xfff)) >>> 0) - this.mem8Base) >>> 0;
      if (!ram(phys)) return TLB_KEEP;
      const s = this.view()[this.mapBase + (phys >>> 12)];
      if (s === PAGE_RW || (s === PAGE_RO && !forWriting)) return TLB_KEEP;
      if (!sideEffects) return s === PAGE_NONE ? TLB_FAIL : TLB_KEEP;
      this.fault(phys >>> 12, forWriting ? "write" : "read", "tlb");
      return TLB_RETRY;
    };

    env[IMPORT_AUDIT] = (address: number, info: number, site: number) => this.auditViolation(address >>> 0, info, site);

    const module = await WebAssembly.compile(wasm as BufferSource);
    const instance = await WebAssembly.instantiate(module, imports);
    const ex = instance.exports as WebAssembly.Exports & Record<string, (...a: number[]) => number>;
    this.memory = ex.memory as WebAssembly.Memory;
    if (typeof ex[EXPORT_SET_MAP_BASE] !== "function") {
      throw new EngineError(`the wasm given to the engine is not instrumented (no ${EXPORT_SET_MAP_BASE} export); use ensureInstrumentedWasm()`);
    }
    // Reserve the page map before v86 allocates anything: memory.grow hands back fresh pages and
    // Rust's allocator only ever uses pages it grew itself.
    this.mapBase = this.memory.grow(MAP_BYTES / 65536) * 65536;
    ex[EXPORT_SET_MAP_BASE](this.mapBase);
    if (ex[EXPORT_GET_MAP_BASE]() !== this.mapBase) throw new EngineError("the instrumented wasm did not accept the page map base");
    this.exports = ex;
    const quiet = ex[EXPORT_QUIET] as unknown as WebAssembly.Global | undefined;
    if (!(quiet instanceof WebAssembly.Global)) throw new EngineError(`the instrumented wasm lacks the ${EXPORT_QUIET} global`);
    this.quiet = quiet;
    const restart = ex[EXPORT_RESTART] as unknown as WebAssembly.Global | undefined;
    if (!(restart instanceof WebAssembly.Global)) throw new EngineError(`the instrumented wasm lacks the ${EXPORT_RESTART} global`);
    this.restart = restart;
    const walking = ex[EXPORT_WALKING] as unknown as WebAssembly.Global | undefined;
    if (!(walking instanceof WebAssembly.Global)) throw new EngineError(`the instrumented wasm lacks the ${EXPORT_WALKING} global`);
    this.walking = walking;
    // Learn where guest RAM lives when v86 allocates it.
    const allocate = ex.allocate_memory;
    const armAudit = ex[EXPORT_AUDIT_SET_RAM];
    if (this.audit && typeof armAudit !== "function") {
      throw new EngineError(`the audit was asked for but the wasm is not the audit build (no ${EXPORT_AUDIT_SET_RAM} export); use ensureInstrumentedWasm({ audit: true })`);
    }
    return {
      ...ex,
      allocate_memory: (size: number) => {
        const p = allocate(size);
        this.mem8Base = p >>> 0;
        if (this.audit) armAudit(this.mem8Base);
        return p;
      },
    };
  }

  /** Wraps the DMA entry points of v86's JS devices (virtio, IDE PIO/DMA to memory, floppy DMA). */
  private hookDevices(): void {
    const cpu = (this.emulator as unknown as { v86: { cpu: V86Cpu } }).v86.cpu;
    // An exception from a hook (a handler error, a refused grant) unwinds v86 mid-instruction:
    // the vCPU cannot go on. Stop it and report the error instead of crashing v86's tick.
    const mainLoop = cpu.main_loop;
    // (0 = next tick at once, where v86 sees the stop request and reports "emulator-stopped")
    cpu.main_loop = () => {
      if (this.error) return 0;
      this.executing = true;
      try {
        return mainLoop();
      } catch (err) {
        this.error = err instanceof Error ? err : new Error(String(err));
        void this.emulator.stop();
        this.onError?.(this.error);
        return 0;
      } finally {
        this.executing = false;
      }
    };
    const readBlob = cpu.read_blob.bind(cpu);
    const writeBlob = cpu.write_blob.bind(cpu);
    cpu.read_blob = (offset: number, length: number) => {
      if (length > 0 && offset >>> 0 < this.memorySize) this.ensure(offset >>> 0, length, "read", "dma");
      return readBlob(offset, length);
    };
    cpu.write_blob = (blob: ArrayLike<number>, offset: number) => {
      if (blob.length > 0 && offset >>> 0 < this.memorySize) this.ensure(offset >>> 0, blob.length, "write", "dma");
      writeBlob(blob, offset);
    };
  }

  /**
   * Makes every page of [addr, addr+len) hold at least what `access` needs, faulting as needed.
   * Returns true when a fault brought new bytes for one of them.
   */
  private ensure(addr: number, len: number, access: FaultAccess, cause: FaultCause): boolean {
    const need = access === "write" ? PAGE_RW : PAGE_RO;
    const last = Math.min(addr + len - 1, this.memorySize - 1) >>> 12;
    let fresh = false;
    for (let p = addr >>> 12; p <= last; p++) {
      if (p >= VGA_FIRST_PAGE && p < VGA_END_PAGE) continue;
      if (this.view()[this.mapBase + p] > need) fresh = this.fault(p, access, cause) || fresh;
    }
    return fresh;
  }

  /** Runs the handler for one fault and applies its grant; true when it supplied bytes. */
  private fault(page: number, access: FaultAccess, cause: FaultCause): boolean {
    this.flushPendingDirty();
    const handler = this.onFault;
    const held = BYTE_ACCESS[this.view()[this.mapBase + page]];
    if (!handler) {
      throw new EngineError(`guest ${access} (${cause}) to page 0x${page.toString(16)} held "${held}", and no fault handler is set`);
    }
    this.stats.faults++;
    this.stats.faultsByCause[cause]++;
    this.faultDepth++;
    let grant: PageGrant;
    try {
      grant = handler({ page, access, cause });
    } finally {
      this.faultDepth--;
    }
    if (!grant || (grant.access !== "read" && grant.access !== "write")) {
      throw new EngineError(`fault handler for page 0x${page.toString(16)} returned ${JSON.stringify(grant)}, expected { access: "read" | "write", bytes? }`);
    }
    if (access === "write" && grant.access !== "write") {
      throw new EngineError(`fault handler granted "${grant.access}" for a write to page 0x${page.toString(16)}`);
    }
    if (grant.bytes !== undefined) this.writePage(page, grant.bytes);
    this.view()[this.mapBase + page] = ACCESS_BYTE[grant.access];
    return grant.bytes !== undefined;
  }

  private auditViolation(address: number, info: number, site: number): void {
    const page = address >>> 12;
    const violation: AuditViolation = {
      page,
      address,
      bytes: info & 0xff,
      access: info & 0x100 ? "write" : "read",
      held: BYTE_ACCESS[this.view()[this.mapBase + page]],
      fn: this.audit ? auditSiteFunction(this.audit.report, site) : `site ${site}`,
      site,
      eip: new DataView(this.view().buffer).getInt32(MEM.previousIp, true),
      restartPending: this.restart.value !== 0,
    };
    if (this.audit?.onViolation) this.audit.onViolation(violation);
    else throw new AuditError(violation);
  }

  /** Drops every translation (and for no-access, compiled code) that could reach `page`. */
  private flushPage(page: number, dropCode: boolean): void {
    // v86 has no reverse map from physical page to TLB entries, so flush all of them. Revocations
    // are rare next to accesses; the TLB refills on demand.
    this.call("full_clear_tlb");
    if (dropCode) this.dirtyCode(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  }

  /** Drops compiled code for [start, end), now or, while v86's JIT holds its lock, later. */
  private dirtyCode(start: number, end: number): void {
    if (this.quiet.value) {
      this.pendingDirty.push([start, end]);
      return;
    }
    this.flushPendingDirty();
    this.call("jit_dirty_cache", start, end);
  }

  private flushPendingDirty(): void {
    if (this.pendingDirty.length === 0 || this.quiet.value) return;
    const list = this.pendingDirty;
    this.pendingDirty = [];
    for (const [a, b] of list) this.call("jit_dirty_cache", a, b);
  }

  private checkPage(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.pageCount) {
      throw new EngineError(`page ${page} is not a guest RAM page (0..${this.pageCount - 1})`);
    }
    if (page >= VGA_FIRST_PAGE && page < VGA_END_PAGE) {
      throw new EngineError(`page 0x${page.toString(16)} is in the VGA window (0xA0000-0xBFFFF), which v86 treats as MMIO`);
    }
  }

  private call(name: string, ...args: number[]): number {
    return this.exports[name](...args);
  }

  /** A byte view of the wasm memory, renewed when memory.grow replaced the buffer. */
  private view(): Uint8Array {
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b as ArrayBuffer;
      this.u8 = new Uint8Array(b);
    }
    return this.u8;
  }
}

