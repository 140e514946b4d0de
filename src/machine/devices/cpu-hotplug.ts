// Node 0's ACPI CPU hotplug device: QEMU's "modern" CPU hotplug register block and a GPE0 block
// (the layout is cpu-hotplug-interface.ts, shared with the AML). Pure: no timers, no globals, no
// v86. The platform plugs a CPU or asks to unplug one; the guest's \_GPE._E02 method then finds the
// event through the registers, and Linux answers with _OST writes and, for a removal, an eject
// write. The device only reports the SCI level; cpu-hotplug-ports.ts puts it on a port table and
// an ISA IRQ line. See README-hotplug.md (Part 1 §2, Part 2 Step 2).
//
// Accesses. Every register is little-endian, and an access of 1, 2 or 4 bytes at any port leaves
// the device in the state that the same bytes written (or read) one at a time, lowest port first,
// would. Reads have no side effects, so they are exactly that composition. A write's side effects
// run once per register it touches, with the register's bytes merged: a dword write of the OST
// status reports one _OST, not four. Bytes outside both blocks read as 0xFF and ignore writes (an
// unclaimed port), as v86 does for ports nobody registered.

import type { IoSize } from "../../protocol/messages.ts";
import {
  CPU_HOTPLUG_BASE,
  CPU_HOTPLUG_CMD,
  CPU_HOTPLUG_FLAG,
  CPU_HOTPLUG_GPE_BIT,
  CPU_HOTPLUG_LENGTH,
  CPU_HOTPLUG_REG,
  GPE0_BASE,
  GPE0_LENGTH,
  MAX_POSSIBLE_CPUS,
} from "./cpu-hotplug-interface.ts";

/** One possible CPU as the device sees it (for the UI and tests). */
export interface CpuHotplugCpuState {
  cpu: number;
  /** CPEN: the CPU exists for the guest (present at boot, or plugged and not ejected since). */
  enabled: boolean;
  /** CINS: plugged, and the guest has not yet acknowledged the insert event. */
  insertPending: boolean;
  /** CRMV: unplug requested, and the guest has not yet acknowledged the remove event. */
  removePending: boolean;
  /** The last _OST event and status the guest wrote for this CPU (0 until it writes one). */
  ostEvent: number;
  ostStatus: number;
}

/** Why the platform's plug or unplug was refused. */
export type CpuHotplugRefusal = "out-of-range" | "already-enabled" | "not-enabled" | "event-pending" | "boot-cpu";

/** The platform asked for something the device cannot do now; `reason` says which rule it broke. */
export class CpuHotplugRefused extends Error {
  override name = "CpuHotplugRefused";
  constructor(
    readonly action: "plug" | "unplug",
    readonly cpu: number,
    readonly reason: CpuHotplugRefusal,
    detail: string,
  ) {
    super(`cannot ${action} CPU ${cpu}: ${detail}`);
  }
}

export interface CpuHotplugOptions {
  /** How many CPUs the tables declare (selectors 0..possibleCpus-1), 1..MAX_POSSIBLE_CPUS. */
  possibleCpus: number;
  /** The CPUs enabled at boot; must hold CPU 0 (the boot CPU). */
  present: Iterable<number>;
}

type Listener<A extends unknown[]> = (...args: A) => void;

/** Adds a listener to a set and returns the function that removes it again. */
function subscribe<A extends unknown[]>(set: Set<Listener<A>>, listener: Listener<A>): () => void {
  set.add(listener);
  return () => void set.delete(listener);
}

const FLAGS = CPU_HOTPLUG_REG.flags;
const COMMAND = CPU_HOTPLUG_REG.command;
const DATA = CPU_HOTPLUG_REG.data;
const SELECTOR = CPU_HOTPLUG_REG.selector;
/** Number of GPE status bytes; as many enable bytes follow them. */
const GPE_HALF = GPE0_LENGTH / 2;

/** The CPU hotplug register block and GPE0 block of node 0 (see the file comment). */
export class CpuHotplugDevice {
  readonly possibleCpus: number;
  private readonly enabled: boolean[];
  private readonly inserting: boolean[];
  private readonly removing: boolean[];
  private readonly ostEvent: number[];
  private readonly ostStatus: number[];
  /** CSEL as last written (32 bits, may name no possible CPU). */
  private selector = 0;
  /** The last command written while the selector was valid. */
  private command: number = CPU_HOTPLUG_CMD.selectNextEvent;
  /** GPE0 status bytes (write 1 to clear) then enable bytes. */
  private readonly gpe = new Uint8Array(GPE0_LENGTH);
  private sci = false;
  private readonly ejectListeners = new Set<Listener<[number]>>();
  private readonly ostListeners = new Set<Listener<[number, number, number]>>();
  private readonly sciListeners = new Set<Listener<[boolean]>>();

  constructor(options: CpuHotplugOptions) {
    const n = options.possibleCpus;
    if (!Number.isInteger(n) || n < 1 || n > MAX_POSSIBLE_CPUS) throw new RangeError(`possibleCpus must be an integer from 1 to ${MAX_POSSIBLE_CPUS}, got ${n}`);
    this.possibleCpus = n;
    this.enabled = new Array<boolean>(n).fill(false);
    this.inserting = new Array<boolean>(n).fill(false);
    this.removing = new Array<boolean>(n).fill(false);
    this.ostEvent = new Array<number>(n).fill(0);
    this.ostStatus = new Array<number>(n).fill(0);
    for (const cpu of options.present) {
      if (!this.inRange(cpu)) throw new RangeError(`a CPU present at boot must be an integer from 0 to ${n - 1}, got ${cpu}`);
      this.enabled[cpu] = true;
    }
    if (!this.enabled[0]) throw new RangeError("CPU 0 (the boot CPU) must be present at boot");
  }

  // --- platform side ------------------------------------------------------------------------------

  /**
   * Makes `cpu` exist for the guest and announces it: CPEN and CINS set, GPE0 status bit
   * CPU_HOTPLUG_GPE_BIT set (the SCI rises if that GPE is enabled). Throws CpuHotplugRefused if
   * the CPU is out of range, already enabled, or still has an event the guest has not taken.
   */
  plug(cpu: number): void {
    if (!this.inRange(cpu)) throw this.refuse("plug", cpu, "out-of-range", `it is not a possible CPU (0 to ${this.possibleCpus - 1})`);
    if (this.inserting[cpu] || this.removing[cpu]) throw this.refuse("plug", cpu, "event-pending", `the guest has not yet taken its pending ${this.inserting[cpu] ? "insert" : "remove"} event`);
    if (this.enabled[cpu]) throw this.refuse("plug", cpu, "already-enabled", "it is already enabled");
    this.enabled[cpu] = true;
    this.inserting[cpu] = true;
    this.raiseGpe();
  }

  /**
   * Asks the guest to give `cpu` back: CRMV set and GPE0 status bit CPU_HOTPLUG_GPE_BIT set. The
   * CPU stays enabled until the guest writes the eject bit (onEject). Throws CpuHotplugRefused if
   * the CPU is out of range, CPU 0, not enabled, or still has an event the guest has not taken.
   */
  requestUnplug(cpu: number): void {
    if (!this.inRange(cpu)) throw this.refuse("unplug", cpu, "out-of-range", `it is not a possible CPU (0 to ${this.possibleCpus - 1})`);
    if (cpu === 0) throw this.refuse("unplug", cpu, "boot-cpu", "CPU 0 is the boot CPU and cannot be removed");
    if (!this.enabled[cpu]) throw this.refuse("unplug", cpu, "not-enabled", "it is not enabled");
    if (this.inserting[cpu] || this.removing[cpu]) throw this.refuse("unplug", cpu, "event-pending", `the guest has not yet taken its pending ${this.inserting[cpu] ? "insert" : "remove"} event`);
    this.removing[cpu] = true;
    this.raiseGpe();
  }

  /** The SCI line: any GPE0 status bit whose enable bit is set. */
  sciLevel(): boolean {
    for (let i = 0; i < GPE_HALF; i++) if ((this.gpe[i]! & this.gpe[GPE_HALF + i]!) !== 0) return true;
    return false;
  }

  /** Every possible CPU's state, a copy. */
  snapshot(): CpuHotplugCpuState[] {
    return this.enabled.map((enabled, cpu) => ({
      cpu,
      enabled,
      insertPending: this.inserting[cpu]!,
      removePending: this.removing[cpu]!,
      ostEvent: this.ostEvent[cpu]!,
      ostStatus: this.ostStatus[cpu]!,
    }));
  }

  /** Called with the CPU when the guest ejects it (it is then no longer enabled). Returns the unsubscribe. */
  onEject(listener: (cpu: number) => void): () => void {
    return subscribe(this.ejectListeners, listener);
  }

  /** Called when the guest writes an _OST status for a CPU, with the event it wrote before. Returns the unsubscribe. */
  onOst(listener: (cpu: number, event: number, status: number) => void): () => void {
    return subscribe(this.ostListeners, listener);
  }

  /** Called whenever sciLevel() changes. Returns the unsubscribe. */
  onSciChange(listener: (level: boolean) => void): () => void {
    return subscribe(this.sciListeners, listener);
  }

  // --- guest side: port accesses ------------------------------------------------------------------

  /** A port read of `size` bytes (the hotplug block, the GPE0 block, or 0xFF bytes elsewhere). */
  read(port: number, size: IoSize): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.readByte(port + i) << (8 * i);
    return value >>> 0;
  }

  /** A port write of `size` bytes; see the file comment for how wider accesses compose. */
  write(port: number, size: IoSize, value: number): void {
    const bytes = new Map<number, number>();
    for (let i = 0; i < size; i++) bytes.set(port + i, (value >>> (8 * i)) & 0xff);
    this.writeHotplug(bytes);
    this.writeGpe(bytes);
  }

  private readByte(port: number): number {
    const h = port - CPU_HOTPLUG_BASE;
    if (h >= 0 && h < CPU_HOTPLUG_LENGTH) return this.readRegisterByte(h);
    const g = port - GPE0_BASE;
    if (g >= 0 && g < GPE0_LENGTH) return this.gpe[g]!;
    return 0xff;
  }

  /** One byte of the hotplug block: all 0 while the selector names no possible CPU. */
  private readRegisterByte(offset: number): number {
    const cpu = this.selector;
    if (!this.inRange(cpu)) return 0;
    if (offset === FLAGS) {
      return (this.enabled[cpu] ? CPU_HOTPLUG_FLAG.enabled : 0) | (this.inserting[cpu] ? CPU_HOTPLUG_FLAG.insert : 0) | (this.removing[cpu] ? CPU_HOTPLUG_FLAG.remove : 0);
    }
    if (offset >= DATA && offset < DATA + 4) return (this.commandData(cpu) >>> (8 * (offset - DATA))) & 0xff;
    // Command data 2 (offset 0-3) is 0 for every command we have (the arch id's upper half is 0),
    // the command byte and 6-7 are write-only or reserved.
    return 0;
  }

  /** What the data register reads for the selected CPU under the current command. */
  private commandData(cpu: number): number {
    switch (this.command) {
      case CPU_HOTPLUG_CMD.selectNextEvent:
        return cpu;
      case CPU_HOTPLUG_CMD.archId:
        return cpu; // the APIC ID: our CPUs' APIC IDs equal their numbers
      default:
        return 0;
    }
  }

  /** The bytes of one register that a write covers, merged over its current value; null if none. */
  private static merge(bytes: Map<number, number>, base: number, width: number, current: number): number | null {
    let value = current;
    let touched = false;
    for (let i = 0; i < width; i++) {
      const b = bytes.get(base + i);
      if (b === undefined) continue;
      value = (value & ~(0xff << (8 * i))) | (b << (8 * i));
      touched = true;
    }
    return touched ? value >>> 0 : null;
  }

  private writeHotplug(bytes: Map<number, number>): void {
    const at = (offset: number) => CPU_HOTPLUG_BASE + offset;
    // In port order: the selector first, so the other registers of the same access see the new one.
    const selector = CpuHotplugDevice.merge(bytes, at(SELECTOR), 4, this.selector);
    if (selector !== null) this.selector = selector;
    const cpu = this.selector;
    // Writes to anything but the selector are ignored until it names a possible CPU.
    if (!this.inRange(cpu)) return;
    const flags = bytes.get(at(FLAGS));
    if (flags !== undefined) this.writeFlags(cpu, flags);
    const command = bytes.get(at(COMMAND));
    if (command !== undefined) this.writeCommand(command);
    // The command may have moved the selector (command 0): data goes to the CPU selected now.
    const target = this.selector;
    if (this.command === CPU_HOTPLUG_CMD.ostEvent) {
      const v = CpuHotplugDevice.merge(bytes, at(DATA), 4, this.ostEvent[target]!);
      if (v !== null) this.ostEvent[target] = v;
    } else if (this.command === CPU_HOTPLUG_CMD.ostStatus) {
      const v = CpuHotplugDevice.merge(bytes, at(DATA), 4, this.ostStatus[target]!);
      if (v !== null) {
        this.ostStatus[target] = v;
        const event = this.ostEvent[target]!;
        for (const l of [...this.ostListeners]) l(target, event, v);
      }
    }
  }

  private writeFlags(cpu: number, value: number): void {
    if (value & CPU_HOTPLUG_FLAG.insert) this.inserting[cpu] = false;
    if (value & CPU_HOTPLUG_FLAG.remove) this.removing[cpu] = false;
    // An eject of CPU 0 is ignored (the AML gives it no _EJ0; node 0 cannot lose its vCPU), as is
    // an eject of a CPU that is not enabled.
    if (value & CPU_HOTPLUG_FLAG.eject && cpu !== 0 && this.enabled[cpu]) {
      this.enabled[cpu] = false;
      this.inserting[cpu] = false;
      this.removing[cpu] = false;
      for (const l of [...this.ejectListeners]) l(cpu);
    }
  }

  private writeCommand(command: number): void {
    this.command = command;
    if (command !== CPU_HOTPLUG_CMD.selectNextEvent) return;
    // From the current selector, wrapping; with no event anywhere the selector stays.
    const n = this.possibleCpus;
    for (let i = 0; i < n; i++) {
      const cpu = (this.selector + i) % n;
      if (this.inserting[cpu] || this.removing[cpu]) {
        this.selector = cpu;
        return;
      }
    }
  }

  private writeGpe(bytes: Map<number, number>): void {
    let touched = false;
    for (let g = 0; g < GPE0_LENGTH; g++) {
      const b = bytes.get(GPE0_BASE + g);
      if (b === undefined) continue;
      touched = true;
      if (g < GPE_HALF) this.gpe[g] = this.gpe[g]! & ~b; // status: write 1 to clear
      else this.gpe[g] = b; // enable
    }
    if (touched) this.updateSci();
  }

  private raiseGpe(): void {
    const byte = CPU_HOTPLUG_GPE_BIT >> 3;
    this.gpe[byte] = this.gpe[byte]! | (1 << (CPU_HOTPLUG_GPE_BIT & 7));
    this.updateSci();
  }

  private updateSci(): void {
    const level = this.sciLevel();
    if (level === this.sci) return;
    this.sci = level;
    for (const l of [...this.sciListeners]) l(level);
  }

  private inRange(cpu: number): boolean {
    return Number.isInteger(cpu) && cpu >= 0 && cpu < this.possibleCpus;
  }

  private refuse(action: "plug" | "unplug", cpu: number, reason: CpuHotplugRefusal, detail: string): CpuHotplugRefused {
    return new CpuHotplugRefused(action, cpu, reason, detail);
  }
}
