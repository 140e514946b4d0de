// Independent decoders for the firmware structures, written from the MP 1.4 and ACPI specs and the
// Linux boot protocol, not from the builders: the tests decode what the builders produced and
// compare it with what the platform description says.

import { expect } from "vitest";

export const sum8 = (b: Uint8Array, start = 0, end = b.length): number => {
  let s = 0;
  for (let i = start; i < end; i++) s += b[i]!;
  return s & 0xff;
};

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const text = (b: Uint8Array, at: number, len: number) => String.fromCharCode(...b.subarray(at, at + len));

/** Guest-physical memory assembled from many writes, read by address. */
export class Memory {
  private readonly bytes: Uint8Array;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  write(address: number, data: Uint8Array): void {
    this.bytes.set(data, address);
  }
  slice(address: number, length: number): Uint8Array {
    expect(address + length, `read of ${length} bytes at 0x${address.toString(16)} is outside RAM`).toBeLessThanOrEqual(this.bytes.length);
    return this.bytes.subarray(address, address + length);
  }
  u8 = (a: number) => this.bytes[a]!;
  u16 = (a: number) => dv(this.bytes).getUint16(a, true);
  u32 = (a: number) => dv(this.bytes).getUint32(a, true);
  u64 = (a: number) => Number(dv(this.bytes).getBigUint64(a, true));
  text = (a: number, len: number) => text(this.bytes, a, len);
}

// ---------------------------------------------------------------- MP specification 1.4

export interface MpDecoded {
  floatingAt: number;
  specRev: number;
  oemId: string;
  lapicAddress: number;
  processors: { apicId: number; version: number; enabled: boolean; bsp: boolean }[];
  buses: { id: number; type: string }[];
  ioapics: { id: number; version: number; enabled: boolean; address: number }[];
  ioInts: { type: number; polarity: number; trigger: number; bus: number; irq: number; ioapic: number; pin: number }[];
  localInts: { type: number; bus: number; irq: number; lapic: number; lint: number }[];
}

/** Finds "_MP_" the way Linux's smp_scan_config does (16-byte steps) within [start, end). */
export function scanMp(mem: Memory, start: number, end: number): number | null {
  for (let a = start; a + 16 <= end; a += 16)
    if (mem.text(a, 4) === "_MP_" && mem.u8(a + 8) === 1 && sum8(mem.slice(a, 16)) === 0) return a;
  return null;
}

export function decodeMp(mem: Memory, floatingAt: number): MpDecoded {
  const fp = mem.slice(floatingAt, 16);
  expect(text(fp, 0, 4)).toBe("_MP_");
  expect(sum8(fp), "MP floating pointer checksum").toBe(0);
  expect(fp[11], "feature byte 1: a configuration table is present").toBe(0);
  const cfg = mem.u32(floatingAt + 4);
  expect(mem.text(cfg, 4)).toBe("PCMP");
  const length = mem.u16(cfg + 4);
  expect(sum8(mem.slice(cfg, length)), "MP configuration table checksum").toBe(0);
  const count = mem.u16(cfg + 34);
  const out: MpDecoded = {
    floatingAt,
    specRev: mem.u8(cfg + 6),
    oemId: mem.text(cfg + 8, 8).trimEnd(),
    lapicAddress: mem.u32(cfg + 36),
    processors: [],
    buses: [],
    ioapics: [],
    ioInts: [],
    localInts: [],
  };
  let at = cfg + 44;
  let lastType = -1;
  for (let i = 0; i < count; i++) {
    const type = mem.u8(at);
    expect(type, "MP base entries are sorted by type").toBeGreaterThanOrEqual(lastType);
    lastType = type;
    if (type === 0) {
      const flags = mem.u8(at + 3);
      out.processors.push({ apicId: mem.u8(at + 1), version: mem.u8(at + 2), enabled: !!(flags & 1), bsp: !!(flags & 2) });
      at += 20;
      continue;
    }
    if (type === 1) out.buses.push({ id: mem.u8(at + 1), type: mem.text(at + 2, 6).trimEnd() });
    else if (type === 2) out.ioapics.push({ id: mem.u8(at + 1), version: mem.u8(at + 2), enabled: !!(mem.u8(at + 3) & 1), address: mem.u32(at + 4) });
    else if (type === 3) {
      const flags = mem.u16(at + 2);
      out.ioInts.push({ type: mem.u8(at + 1), polarity: flags & 3, trigger: (flags >> 2) & 3, bus: mem.u8(at + 4), irq: mem.u8(at + 5), ioapic: mem.u8(at + 6), pin: mem.u8(at + 7) });
    } else if (type === 4) out.localInts.push({ type: mem.u8(at + 1), bus: mem.u8(at + 4), irq: mem.u8(at + 5), lapic: mem.u8(at + 6), lint: mem.u8(at + 7) });
    else throw new Error(`unknown MP entry type ${type}`);
    at += 8;
  }
  expect(at - cfg, "entry count and base table length agree").toBe(length);
  return out;
}

// ---------------------------------------------------------------- ACPI

export interface SdtDecoded {
  signature: string;
  address: number;
  length: number;
  revision: number;
  oemId: string;
  body: Uint8Array;
}

export function decodeSdt(mem: Memory, address: number): SdtDecoded {
  const signature = mem.text(address, 4);
  const length = mem.u32(address + 4);
  expect(length, `${signature} length`).toBeGreaterThanOrEqual(36);
  expect(sum8(mem.slice(address, length)), `${signature} checksum`).toBe(0);
  return { signature, address, length, revision: mem.u8(address + 8), oemId: mem.text(address + 10, 6), body: mem.slice(address + 36, length - 36) };
}

/** Finds "RSD PTR " on 16-byte boundaries, as Linux's acpi_find_root_pointer does in 0xE0000-0xFFFFF. */
export function scanRsdp(mem: Memory, start: number, end: number): number | null {
  for (let a = start; a + 20 <= end; a += 16) if (mem.text(a, 8) === "RSD PTR " && sum8(mem.slice(a, 20)) === 0) return a;
  return null;
}

export interface AcpiDecoded {
  revision: number;
  rsdt: number[];
  xsdt: number[] | null;
  tables: Map<string, SdtDecoded>;
}

export function decodeAcpi(mem: Memory, rsdp: number): AcpiDecoded {
  expect(mem.text(rsdp, 8)).toBe("RSD PTR ");
  expect(sum8(mem.slice(rsdp, 20)), "RSDP checksum (first 20 bytes)").toBe(0);
  const revision = mem.u8(rsdp + 15);
  const rsdtSdt = decodeSdt(mem, mem.u32(rsdp + 16));
  expect(rsdtSdt.signature).toBe("RSDT");
  const rsdt = Array.from({ length: (rsdtSdt.length - 36) / 4 }, (_, i) => dv(rsdtSdt.body).getUint32(i * 4, true));
  let xsdt: number[] | null = null;
  if (revision >= 2) {
    const length = mem.u32(rsdp + 20);
    expect(length).toBe(36);
    expect(sum8(mem.slice(rsdp, length)), "RSDP extended checksum").toBe(0);
    const x = decodeSdt(mem, mem.u64(rsdp + 24));
    expect(x.signature).toBe("XSDT");
    xsdt = Array.from({ length: (x.length - 36) / 8 }, (_, i) => Number(dv(x.body).getBigUint64(i * 8, true)));
  }
  const tables = new Map<string, SdtDecoded>();
  for (const a of xsdt ?? rsdt) {
    const t = decodeSdt(mem, a);
    tables.set(t.signature, t);
  }
  return { revision, rsdt, xsdt, tables };
}

export interface MadtDecoded {
  lapicAddress: number;
  pcatCompat: boolean;
  lapics: { processorId: number; apicId: number; enabled: boolean }[];
  /** The local APIC entries' whole flags words, in order (bit 0 Enabled, bit 1 Online Capable). */
  lapicFlags: number[];
  ioapics: { id: number; address: number; gsiBase: number }[];
  overrides: { bus: number; irq: number; gsi: number; polarity: number; trigger: number }[];
  lapicNmis: { processorId: number; lint: number }[];
}

export function decodeMadt(t: SdtDecoded): MadtDecoded {
  expect(t.signature).toBe("APIC");
  const b = t.body;
  const d = dv(b);
  const out: MadtDecoded = { lapicAddress: d.getUint32(0, true), pcatCompat: !!(d.getUint32(4, true) & 1), lapics: [], lapicFlags: [], ioapics: [], overrides: [], lapicNmis: [] };
  let at = 8;
  while (at < b.length) {
    const type = b[at]!;
    const len = b[at + 1]!;
    expect(len, `MADT entry of type ${type} has a length`).toBeGreaterThanOrEqual(2);
    if (type === 0) {
      expect(len).toBe(8);
      out.lapics.push({ processorId: b[at + 2]!, apicId: b[at + 3]!, enabled: !!(d.getUint32(at + 4, true) & 1) });
      out.lapicFlags.push(d.getUint32(at + 4, true));
    } else if (type === 1) {
      expect(len).toBe(12);
      out.ioapics.push({ id: b[at + 2]!, address: d.getUint32(at + 4, true), gsiBase: d.getUint32(at + 8, true) });
    } else if (type === 2) {
      expect(len).toBe(10);
      const flags = d.getUint16(at + 8, true);
      out.overrides.push({ bus: b[at + 2]!, irq: b[at + 3]!, gsi: d.getUint32(at + 4, true), polarity: flags & 3, trigger: (flags >> 2) & 3 });
    } else if (type === 4) {
      expect(len).toBe(6);
      out.lapicNmis.push({ processorId: b[at + 2]!, lint: b[at + 5]! });
    } else throw new Error(`unexpected MADT entry type ${type}`);
    at += len;
  }
  expect(at).toBe(b.length);
  return out;
}

export interface FadtDecoded {
  facs: number;
  dsdt: number;
  sciInt: number;
  smiCmd: number;
  pm1aEvt: number;
  pm1aCnt: number;
  pmTmr: number;
  gpe0: number;
  pm1EvtLen: number;
  pm1CntLen: number;
  pmTmrLen: number;
  gpe0Len: number;
}

export function decodeFadt(t: SdtDecoded): FadtDecoded {
  expect(t.signature).toBe("FACP");
  expect(t.length).toBeGreaterThanOrEqual(116);
  const d = dv(t.body);
  const u32 = (o: number) => d.getUint32(o - 36, true);
  const u8 = (o: number) => d.getUint8(o - 36);
  return {
    facs: u32(36),
    dsdt: u32(40),
    sciInt: d.getUint16(46 - 36, true),
    smiCmd: u32(48),
    pm1aEvt: u32(56),
    pm1aCnt: u32(64),
    pmTmr: u32(76),
    gpe0: u32(80),
    pm1EvtLen: u8(88),
    pm1CntLen: u8(89),
    pmTmrLen: u8(91),
    gpe0Len: u8(92),
  };
}

// ---------------------------------------------------------------- Linux boot_params

export interface BootParamsDecoded {
  typeOfLoader: number;
  loadflags: number;
  cmdLinePtr: number;
  ramdiskImage: number;
  ramdiskSize: number;
  version: number;
  e820: { address: number; size: number; type: number }[];
}

export function decodeBootParams(bp: Uint8Array): BootParamsDecoded {
  expect(bp.length).toBe(4096);
  const d = dv(bp);
  expect(d.getUint16(0x1fe, true)).toBe(0xaa55);
  expect(text(bp, 0x202, 4)).toBe("HdrS");
  const n = bp[0x1e8]!;
  return {
    typeOfLoader: bp[0x210]!,
    loadflags: bp[0x211]!,
    cmdLinePtr: d.getUint32(0x228, true),
    ramdiskImage: d.getUint32(0x218, true),
    ramdiskSize: d.getUint32(0x21c, true),
    version: d.getUint16(0x206, true),
    e820: Array.from({ length: n }, (_, i) => {
      const at = 0x2d0 + 20 * i;
      return { address: Number(d.getBigUint64(at, true)), size: Number(d.getBigUint64(at + 8, true)), type: d.getUint32(at + 16, true) };
    }),
  };
}
