// Architectural state of a v86 vCPU as a typed object, read from and written to v86's fixed
// linear-memory layout (MEM in abi.ts). Only valid at an instruction boundary (VcpuInterrupts checks).

import { MEM } from "./abi.ts";

export interface SegmentState {
  selector: number;
  base: number;
  limit: number;
  /** Descriptor access byte (P, DPL, S, type) as v86 caches it. */
  access: number;
  /** A null selector was loaded (protected mode). */
  isNull: boolean;
}

export const SEGMENTS = ["es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"] as const;
export type SegmentName = (typeof SEGMENTS)[number];
export const GPRS = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
export type GprName = (typeof GPRS)[number];

export interface CpuState {
  gpr: Record<GprName, number>;
  /** EIP relative to CS (v86 itself keeps CS base + EIP). */
  eip: number;
  eflags: number;
  seg: Record<SegmentName, SegmentState>;
  cr0: number;
  cr2: number;
  cr3: number;
  cr4: number;
  gdtr: { base: number; limit: number };
  idtr: { base: number; limit: number };
  cpl: number;
  /** v86's mode bits, derived by it from CR0.PE and the CS/SS descriptors; written back as given. */
  protectedMode: boolean;
  is32: boolean;
  stackSize32: boolean;
  halted: boolean;
}

export class CpuStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CpuStateError";
  }
}

interface Exports {
  get_eflags(): number;
  full_clear_tlb(): void;
  update_state_flags(): void;
}

export function readCpuState(memory: WebAssembly.Memory, ex: Exports): CpuState {
  const dv = new DataView(memory.buffer);
  const u32 = (a: number) => dv.getUint32(a, true);
  const seg = {} as Record<SegmentName, SegmentState>;
  SEGMENTS.forEach((name, i) => {
    seg[name] = {
      selector: dv.getUint16(MEM.sreg + 2 * i, true),
      base: u32(MEM.segmentOffsets + 4 * i),
      limit: u32(MEM.segmentLimits + 4 * i),
      access: dv.getUint8(MEM.segmentAccessBytes + i),
      isNull: dv.getUint8(MEM.segmentIsNull + i) !== 0,
    };
  });
  const gpr = {} as Record<GprName, number>;
  GPRS.forEach((name, i) => (gpr[name] = u32(MEM.reg32 + 4 * i)));
  return {
    gpr,
    eip: (u32(MEM.instructionPointer) - seg.cs.base) >>> 0,
    eflags: ex.get_eflags() >>> 0,
    seg,
    cr0: u32(MEM.cr),
    cr2: u32(MEM.cr + 8),
    cr3: u32(MEM.cr + 12),
    cr4: u32(MEM.cr + 16),
    gdtr: { base: u32(MEM.gdtrOffset), limit: u32(MEM.gdtrSize) },
    idtr: { base: u32(MEM.idtrOffset), limit: u32(MEM.idtrSize) },
    cpl: dv.getUint8(MEM.cpl),
    protectedMode: dv.getUint8(MEM.protectedMode) !== 0,
    is32: dv.getUint8(MEM.is32) !== 0,
    stackSize32: dv.getUint8(MEM.stackSize32) !== 0,
    halted: dv.getUint8(MEM.inHlt) !== 0,
  };
}

function u32Field(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
    throw new CpuStateError(`${what} must be a 32-bit integer, got ${JSON.stringify(v)}`);
  }
  return v >>> 0;
}

function boolField(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw new CpuStateError(`${what} must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}

/** Checks a whole state object, so a bad field fails before anything is written. */
export function validateCpuState(s: CpuState): void {
  if (typeof s !== "object" || s === null) throw new CpuStateError("the CPU state must be an object");
  for (const r of GPRS) u32Field(s.gpr?.[r], `gpr.${r}`);
  for (const name of SEGMENTS) {
    const g = s.seg?.[name];
    if (typeof g !== "object" || g === null) throw new CpuStateError(`seg.${name} is missing`);
    if (u32Field(g.selector, `seg.${name}.selector`) > 0xffff) throw new CpuStateError(`seg.${name}.selector exceeds 16 bits`);
    u32Field(g.base, `seg.${name}.base`);
    u32Field(g.limit, `seg.${name}.limit`);
    if (u32Field(g.access, `seg.${name}.access`) > 0xff) throw new CpuStateError(`seg.${name}.access exceeds 8 bits`);
    boolField(g.isNull, `seg.${name}.isNull`);
  }
  for (const k of ["eip", "eflags", "cr0", "cr2", "cr3", "cr4"] as const) u32Field(s[k], k);
  for (const k of ["gdtr", "idtr"] as const) {
    u32Field(s[k]?.base, `${k}.base`);
    u32Field(s[k]?.limit, `${k}.limit`);
  }
  if (!Number.isInteger(s.cpl) || s.cpl < 0 || s.cpl > 3) throw new CpuStateError(`cpl must be 0..3, got ${JSON.stringify(s.cpl)}`);
  for (const k of ["protectedMode", "is32", "stackSize32", "halted"] as const) boolField(s[k], k);
  if (s.protectedMode !== ((s.cr0 & 1) === 1)) throw new CpuStateError(`protectedMode (${s.protectedMode}) disagrees with CR0.PE (cr0 = 0x${(s.cr0 >>> 0).toString(16)})`);
}

export function writeCpuState(memory: WebAssembly.Memory, ex: Exports, s: CpuState): void {
  validateCpuState(s);
  const dv = new DataView(memory.buffer);
  const w32 = (a: number, v: number) => dv.setUint32(a, v >>> 0, true);
  GPRS.forEach((name, i) => w32(MEM.reg32 + 4 * i, s.gpr[name]));
  SEGMENTS.forEach((name, i) => {
    const g = s.seg[name];
    dv.setUint16(MEM.sreg + 2 * i, g.selector, true);
    w32(MEM.segmentOffsets + 4 * i, g.base);
    w32(MEM.segmentLimits + 4 * i, g.limit);
    dv.setUint8(MEM.segmentAccessBytes + i, g.access);
    dv.setUint8(MEM.segmentIsNull + i, g.isNull ? 1 : 0);
  });
  w32(MEM.instructionPointer, s.seg.cs.base + s.eip);
  w32(MEM.previousIp, s.seg.cs.base + s.eip);
  // Flags are kept lazily by v86; writing them with flags_changed = 0 makes the stored value current.
  w32(MEM.flags, (s.eflags | 2) >>> 0);
  w32(MEM.flagsChanged, 0);
  w32(MEM.cr, s.cr0);
  w32(MEM.cr + 8, s.cr2);
  w32(MEM.cr + 12, s.cr3);
  w32(MEM.cr + 16, s.cr4);
  w32(MEM.gdtrOffset, s.gdtr.base);
  w32(MEM.gdtrSize, s.gdtr.limit);
  w32(MEM.idtrOffset, s.idtr.base);
  w32(MEM.idtrSize, s.idtr.limit);
  dv.setUint8(MEM.cpl, s.cpl);
  dv.setUint8(MEM.protectedMode, s.protectedMode ? 1 : 0);
  dv.setUint8(MEM.is32, s.is32 ? 1 : 0);
  dv.setUint8(MEM.stackSize32, s.stackSize32 ? 1 : 0);
  dv.setUint8(MEM.inHlt, s.halted ? 1 : 0);
  // Translations and the cached code-page lookup depend on the paging and segment state.
  dv.setInt32(MEM.lastVirtEip, -1, true);
  ex.full_clear_tlb();
  ex.update_state_flags();
}

/** Real-mode start at `vector << 12` (what a start-up IPI does to a CPU waiting for one). */
export function startupState(base: CpuState, vector: number): CpuState {
  const cs: SegmentState = { selector: vector << 8, base: vector << 12, limit: 0xffff, access: base.seg.cs.access, isNull: false };
  return { ...base, eip: 0, seg: { ...base.seg, cs }, halted: false };
}
