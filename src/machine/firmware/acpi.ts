// ACPI tables for N CPUs: RSDP -> RSDT (and XSDT for ACPI 2.0) -> MADT, and optionally a FADT
// with its FACS and a DSDT (empty, or with the CPU hotplug AML when CPUs may be hot-added). The MADT is what makes Linux see every CPU and the IOAPIC; the
// FADT tells it where v86's PIIX4-style power-management registers are (PM timer at 0xB008, etc.),
// which lets the ACPI interpreter start instead of giving up for want of a FADT/DSDT.

import { fixChecksum, TableWriter } from "./bytes.ts";
import { buildCpuHotplugAml } from "./cpu-hotplug-aml.ts";
import { check } from "./errors.ts";
import { intiFlags, type Platform } from "./platform.ts";

export type AcpiRevision = 0 | 2;

export interface AcpiOptions {
  /** Physical address of the first byte (the RSDP, which must be 16-byte aligned). */
  address: number;
  /** 0: ACPI 1.0 RSDP with an RSDT; 2: ACPI 2.0+ RSDP with an RSDT and an XSDT. */
  revision?: AcpiRevision;
  /** Include FADT + FACS + DSDT (default true). Without them Linux still reads the MADT. */
  fadt?: boolean;
}

export interface AcpiTables {
  bytes: Uint8Array;
  rsdpAddress: number;
  /** Where each table landed, e.g. { signature: "APIC", address, length }. */
  tables: { signature: string; address: number; length: number }[];
}

/** v86's ACPI function (src/acpi.js): PM1a event block 0xB000, control 0xB004, timer 0xB008, GPE0 0xAFE0. */
export const V86_PM = { pm1aEvt: 0xb000, pm1aCnt: 0xb004, pmTmr: 0xb008, gpe0: 0xafe0 } as const;

const OEM_ID = "GIANTW";
const OEM_TABLE_ID = "GWEBPLAT";
const CREATOR_ID = "GWEB";
export const SDT_HEADER_SIZE = 36;

const align = (n: number, a: number) => Math.ceil(n / a) * a;

function sdt(signature: string, bodyLength: number, revision: number): TableWriter {
  const w = new TableWriter(SDT_HEADER_SIZE + bodyLength);
  w.ascii(0, signature, 4).u32(4, w.bytes.length).u8(8, revision);
  w.ascii(10, OEM_ID, 6).ascii(16, OEM_TABLE_ID, 8).u32(24, 1).ascii(28, CREATOR_ID, 4).u32(32, 1);
  return w;
}
const seal = (w: TableWriter): Uint8Array => {
  fixChecksum(w.bytes, 9);
  return w.bytes;
};

/** MADT processor local APIC flags. */
export const MADT_LAPIC_ENABLED = 1 << 0;
export const MADT_LAPIC_ONLINE_CAPABLE = 1 << 1;

export function buildMadt(p: Platform): Uint8Array {
  const overrides = p.routes.filter((r) => r.pin !== r.irq || r.polarity !== "conforms" || r.trigger !== "conforms");
  const length = 8 + p.possibleCpus * 8 + 12 + overrides.length * 10 + 6;
  const w = sdt("APIC", length, 1);
  w.u32(36, p.lapicAddress).u32(40, 1); // PCAT_COMPAT: dual 8259s are present
  let at = 44;
  for (let id = 0; id < p.possibleCpus; id++) {
    // processor local APIC: enabled when present at boot. An absent CPU is listed anyway (Linux
    // counts it as a hotplug CPU; without the entry hotplug cannot work) with Enabled clear and
    // Online Capable (bit 1, ACPI 6.3) set: our revision-1 FADT makes Linux ignore bit 1, but a
    // FADT of 6.3 or later would make it drop a disabled entry without it.
    const flags = id < p.cpus ? MADT_LAPIC_ENABLED : MADT_LAPIC_ONLINE_CAPABLE;
    w.u8(at, 0).u8(at + 1, 8).u8(at + 2, id).u8(at + 3, id).u32(at + 4, flags);
    at += 8;
  }
  w.u8(at, 1).u8(at + 1, 12).u8(at + 2, p.ioapic.id).u8(at + 3, 0).u32(at + 4, p.ioapic.address).u32(at + 8, 0);
  at += 12;
  for (const r of overrides) {
    w.u8(at, 2).u8(at + 1, 10).u8(at + 2, 0).u8(at + 3, r.irq).u32(at + 4, r.pin).u16(at + 8, intiFlags(r));
    at += 10;
  }
  w.u8(at, 4).u8(at + 1, 6).u8(at + 2, 0xff).u16(at + 3, 0).u8(at + 5, 1); // NMI on LINT1 of every CPU
  at += 6;
  check(at === w.bytes.length, `MADT layout error: wrote ${at} of ${w.bytes.length} bytes`);
  return seal(w);
}

/** ACPI 1.0 FADT (revision 1, 116 bytes), which every ACPI version still accepts. */
export function buildFadt(p: Platform, facsAddress: number, dsdtAddress: number): Uint8Array {
  const w = sdt("FACP", 116 - SDT_HEADER_SIZE, 1);
  w.u32(36, facsAddress).u32(40, dsdtAddress).u8(44, 1); // INT_MODEL: multiple APIC
  w.u16(46, p.sciIrq).u32(48, 0); // no SMI_CMD: the hardware is always in ACPI mode (v86's SCI_EN is 1)
  w.u32(56, V86_PM.pm1aEvt).u32(64, V86_PM.pm1aCnt).u32(76, V86_PM.pmTmr).u32(80, V86_PM.gpe0);
  w.u8(88, 4).u8(89, 2).u8(91, 4).u8(92, 4);
  w.u16(96, 0x0fff).u16(98, 0x0fff); // C2 and C3 not supported
  // WBINVD works, C1 supported, power and sleep buttons (if any) are control-method devices
  w.u32(112, (1 << 0) | (1 << 2) | (1 << 4) | (1 << 5));
  return seal(w);
}

/**
 * Without hotplug mode, a DSDT with no AML: the interpreter loads an empty namespace (no PCI root,
 * no devices). In hotplug mode, the CPU hotplug AML (cpu-hotplug-aml.ts): a processor device per
 * possible CPU and the GPE handler. Revision 1 (32-bit integers) either way.
 */
export function buildDsdt(p?: Platform): Uint8Array {
  const body = p?.hotplug ? buildCpuHotplugAml(p) : new Uint8Array(0);
  const w = sdt("DSDT", body.length, 1);
  w.set(SDT_HEADER_SIZE, body);
  return seal(w);
}

export function buildFacs(): Uint8Array {
  const w = new TableWriter(64);
  w.ascii(0, "FACS", 4).u32(4, 64).u8(32, 1); // version 1
  return w.bytes;
}

export function buildAcpiTables(p: Platform, opts: AcpiOptions): AcpiTables {
  const revision = opts.revision ?? 2;
  check(revision === 0 || revision === 2, `ACPI revision must be 0 or 2, got ${String(revision)}`);
  check(opts.address % 16 === 0, `RSDP address 0x${opts.address.toString(16)} is not 16-byte aligned`);
  const withFadt = opts.fadt ?? true;
  check(withFadt || !p.hotplug, "CPU hotplug needs the FADT and its DSDT (the hotplug AML and GPE block); do not pass fadt: false with possibleCpus > cpus");

  const rsdpLength = revision === 2 ? 36 : 20;
  const madt = buildMadt(p);
  const placed: { signature: string; address: number; bytes: Uint8Array }[] = [];
  let next = align(opts.address + rsdpLength, 16);
  const place = (signature: string, bytes: Uint8Array, alignment = 16): number => {
    const address = align(next, alignment);
    placed.push({ signature, address, bytes });
    next = address + bytes.length;
    return address;
  };

  const sdtCount = 1 + (withFadt ? 1 : 0);
  const rsdtAddr = place("RSDT", new Uint8Array(SDT_HEADER_SIZE + 4 * sdtCount));
  const xsdtAddr = revision === 2 ? place("XSDT", new Uint8Array(SDT_HEADER_SIZE + 8 * sdtCount)) : 0;
  const entries: number[] = [];
  if (withFadt) {
    const facsAddr = place("FACS", buildFacs(), 64);
    const dsdtAddr = place("DSDT", buildDsdt(p));
    // the FADT comes first in the root table, as firmware usually orders it
    entries.push(place("FACP", buildFadt(p, facsAddr, dsdtAddr)));
  }
  entries.push(place("APIC", madt));

  const rsdt = sdt("RSDT", 4 * entries.length, 1);
  entries.forEach((a, i) => rsdt.u32(SDT_HEADER_SIZE + 4 * i, a));
  placed.find((t) => t.signature === "RSDT")!.bytes = seal(rsdt);
  if (revision === 2) {
    const xsdt = sdt("XSDT", 8 * entries.length, 1);
    entries.forEach((a, i) => xsdt.u64(SDT_HEADER_SIZE + 8 * i, a));
    placed.find((t) => t.signature === "XSDT")!.bytes = seal(xsdt);
  }

  const total = next - opts.address;
  const out = new TableWriter(total);
  out.ascii(0, "RSD PTR ", 8).ascii(9, OEM_ID, 6).u8(15, revision).u32(16, rsdtAddr);
  if (revision === 2) out.u32(20, 36).u64(24, xsdtAddr);
  fixChecksum(out.bytes, 8, 0, 20);
  if (revision === 2) fixChecksum(out.bytes, 32, 0, 36);
  for (const t of placed) out.set(t.address - opts.address, t.bytes);
  return {
    bytes: out.bytes,
    rsdpAddress: opts.address,
    tables: [
      { signature: "RSD PTR ", address: opts.address, length: rsdpLength },
      ...placed.map((t) => ({ signature: t.signature, address: t.address, length: t.bytes.length })),
    ],
  };
}
