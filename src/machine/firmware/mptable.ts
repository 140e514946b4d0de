// Intel MultiProcessor Specification 1.4 tables: the floating pointer structure ("_MP_") and the
// configuration table ("PCMP") listing every CPU, the ISA bus, the IOAPIC and the interrupt wiring.
// Linux reads these when ACPI is absent or disabled (acpi=off); with ACPI it prefers the MADT.

import { fixChecksum, TableWriter } from "./bytes.ts";
import { check } from "./errors.ts";
import { intiFlags, type Platform } from "./platform.ts";

export const MP_FLOATING_SIZE = 16;
const HEADER_SIZE = 44;
const PROCESSOR_SIZE = 20;
const ENTRY_SIZE = 8;

/** Entry types of the base configuration table. */
export const MpEntry = { Processor: 0, Bus: 1, IoApic: 2, IoInterrupt: 3, LocalInterrupt: 4 } as const;
/** Interrupt types of I/O and local interrupt entries. */
export const MpIntType = { INT: 0, NMI: 1, SMI: 2, ExtINT: 3 } as const;

const ISA_BUS_ID = 0;

/** The CPU signature and feature flags v86 reports in CPUID leaf 1 (family 6, model 7, stepping 3). */
const CPU_SIGNATURE = 0x673;
const CPU_FEATURES = (1 << 0) | (1 << 9); // FPU, on-chip APIC
const LAPIC_VERSION = 0x14;

export interface MpTableOptions {
  /** Physical address the floating pointer will be written at (16-byte aligned). */
  address: number;
  oemId?: string;
  productId?: string;
}

/** Returns the floating pointer immediately followed by the configuration table. */
export function buildMpTable(p: Platform, opts: MpTableOptions): Uint8Array {
  check(opts.address % 16 === 0, `MP floating pointer address 0x${opts.address.toString(16)} is not 16-byte aligned`);
  const ioInts = p.routes.length + (p.extIntPin === null ? 0 : 1);
  const entries = p.possibleCpus + 1 + 1 + ioInts + 2;
  const configLength = HEADER_SIZE + p.possibleCpus * PROCESSOR_SIZE + (entries - p.possibleCpus) * ENTRY_SIZE;
  const w = new TableWriter(MP_FLOATING_SIZE + configLength);
  const configAddress = opts.address + MP_FLOATING_SIZE;

  // floating pointer
  w.ascii(0, "_MP_", 4).u32(4, configAddress).u8(8, 1).u8(9, 4); // length in 16-byte units, spec 1.4
  // feature byte 1 = 0: a configuration table is present; byte 2 bit 7 clear: virtual-wire mode, no IMCR
  fixChecksum(w.bytes, 10, 0, MP_FLOATING_SIZE);

  // configuration table header
  const c = MP_FLOATING_SIZE;
  w.ascii(c, "PCMP", 4).u16(c + 4, configLength).u8(c + 6, 4);
  w.ascii(c + 8, opts.oemId ?? "GIANTWEB", 8).ascii(c + 16, opts.productId ?? "MANY-TO-ONE", 12);
  w.u32(c + 28, 0).u16(c + 32, 0).u16(c + 34, entries).u32(c + 36, p.lapicAddress).u16(c + 40, 0);

  let at = c + HEADER_SIZE;
  for (let id = 0; id < p.possibleCpus; id++) {
    // enabled when present at boot (Linux counts a disabled entry as a hotplug CPU); CPU 0 is the bootstrap processor
    const flags = (id < p.cpus ? 1 : 0) | (id === 0 ? 2 : 0);
    w.u8(at, MpEntry.Processor).u8(at + 1, id).u8(at + 2, LAPIC_VERSION).u8(at + 3, flags);
    w.u32(at + 4, CPU_SIGNATURE).u32(at + 8, CPU_FEATURES);
    at += PROCESSOR_SIZE;
  }
  w.u8(at, MpEntry.Bus).u8(at + 1, ISA_BUS_ID).ascii(at + 2, "ISA", 6);
  at += ENTRY_SIZE;
  w.u8(at, MpEntry.IoApic).u8(at + 1, p.ioapic.id).u8(at + 2, p.ioapic.version).u8(at + 3, 1).u32(at + 4, p.ioapic.address);
  at += ENTRY_SIZE;
  const ioInt = (type: number, flags: number, irq: number, pin: number) => {
    w.u8(at, MpEntry.IoInterrupt).u8(at + 1, type).u16(at + 2, flags).u8(at + 4, ISA_BUS_ID).u8(at + 5, irq);
    w.u8(at + 6, p.ioapic.id).u8(at + 7, pin);
    at += ENTRY_SIZE;
  };
  if (p.extIntPin !== null) ioInt(MpIntType.ExtINT, 0, 0, p.extIntPin);
  for (const r of p.routes) ioInt(MpIntType.INT, intiFlags(r), r.irq, r.pin);
  // LINT0 takes the 8259 (virtual wire), LINT1 takes NMI, on every local APIC (ID 0xFF)
  const localInt = (type: number, lint: number) => {
    w.u8(at, MpEntry.LocalInterrupt).u8(at + 1, type).u16(at + 2, 0).u8(at + 4, ISA_BUS_ID).u8(at + 5, 0);
    w.u8(at + 6, 0xff).u8(at + 7, lint);
    at += ENTRY_SIZE;
  };
  localInt(MpIntType.ExtINT, 0);
  localInt(MpIntType.NMI, 1);
  check(at === w.bytes.length, `MP table layout error: wrote ${at} of ${w.bytes.length} bytes`);

  fixChecksum(w.bytes, c + 7, c, c + configLength);
  return w.bytes;
}
