// The machine the firmware describes: N CPUs with APIC IDs 0..N-1, one IOAPIC, and how the ISA
// interrupt lines reach its pins. Both the MP table and the ACPI MADT are serialised from this
// one description, so they cannot disagree. With CPU hotplug ("hotplug mode", possibleCpus > cpus)
// CPUs cpus..possibleCpus-1 are described too, as possible but absent (README-hotplug.md).

import { MAX_POSSIBLE_CPUS } from "../devices/cpu-hotplug-interface.ts";
import { check } from "./errors.ts";
import { IOAPIC_ADDR, LAPIC_ADDR } from "./layout.ts";

/**
 * How ISA IRQs reach the IOAPIC.
 * - "pc": as on a PC chipset (and QEMU): the 8259's output on pin 0 (ExtINT), the PIT's IRQ0 on
 *   pin 2, every other ISA IRQ on the pin of its number. Tables carry an IRQ0 -> GSI 2 override.
 * - "identity": ISA IRQ n on pin n, IRQ0 included, no ExtINT pin. This is how v86 0.5.x wires its
 *   devices (`device_raise_irq(n)` sets IOAPIC pin n), so it is what a v86 guest must be told.
 */
export type IsaWiring = "pc" | "identity";

export type Polarity = "conforms" | "high" | "low";
export type Trigger = "conforms" | "edge" | "level";

/** One ISA IRQ's connection to an IOAPIC pin (MP "I/O interrupt" entry / MADT override). */
export interface IsaRoute {
  irq: number;
  pin: number;
  polarity: Polarity;
  trigger: Trigger;
}

export interface PlatformSpec {
  /** Number of CPUs present at boot; CPU i has local APIC ID i, CPU 0 boots. */
  cpus: number;
  /**
   * CPUs the guest may ever have (cpus..possibleCpus-1 are absent at boot and can be hot-added);
   * default `cpus`. Above `cpus` the tables describe the absent CPUs too and the DSDT carries the
   * CPU hotplug AML ("hotplug mode"). At most MAX_POSSIBLE_CPUS.
   */
  possibleCpus?: number;
  isaWiring?: IsaWiring;
  /** ISA IRQ of the ACPI SCI (v86's PIIX4-like ACPI function uses 9, as PCs do). */
  sciIrq?: number;
}

export interface Platform {
  /** CPUs present (enabled) at boot. */
  cpus: number;
  /** Their APIC IDs, 0..cpus-1. */
  apicIds: number[];
  /** CPUs the tables describe: present ones, then absent (hot-pluggable) ones; APIC ID = index. */
  possibleCpus: number;
  /** possibleCpus > cpus: absent CPUs in the tables, hotplug AML in the DSDT. */
  hotplug: boolean;
  lapicAddress: number;
  ioapic: { id: number; address: number; version: number; pins: number };
  isaWiring: IsaWiring;
  routes: IsaRoute[];
  /** IOAPIC pin wired to the 8259's INTR output, or null when the 8259 reaches only LINT0. */
  extIntPin: number | null;
  sciIrq: number;
}

/** v86's IOAPIC keeps a 4-bit ID, like the P6 APIC bus; CPUs take IDs 0..N-1 and the IOAPIC N.
 *  The limit without hotplug mode; in hotplug mode the IOAPIC takes ID 0 and the limit is MAX_POSSIBLE_CPUS. */
export const MAX_CPUS = 15;
export { MAX_POSSIBLE_CPUS };
/** v86's IOAPIC has 24 redirection entries (IOAPIC version 0x11, max entry 23). */
const IOAPIC_PINS = 24;

export function describePlatform(spec: PlatformSpec): Platform {
  const { cpus } = spec;
  const possibleCpus = spec.possibleCpus ?? cpus;
  const hotplug = spec.possibleCpus !== undefined && spec.possibleCpus !== cpus;
  if (spec.possibleCpus !== undefined)
    check(
      Number.isInteger(possibleCpus) && possibleCpus >= 1 && possibleCpus <= MAX_POSSIBLE_CPUS,
      `possibleCpus must be an integer from 1 to ${MAX_POSSIBLE_CPUS}, got ${possibleCpus}`,
    );
  const maxCpus = hotplug ? possibleCpus : MAX_CPUS;
  check(Number.isInteger(cpus) && cpus >= 1 && cpus <= maxCpus, hotplug
    ? `cpus must be an integer from 1 to possibleCpus (${possibleCpus}), got ${cpus}`
    : `cpus must be an integer from 1 to ${MAX_CPUS}, got ${cpus}`);
  const isaWiring = spec.isaWiring ?? "identity";
  check(isaWiring === "pc" || isaWiring === "identity", `isaWiring must be "pc" or "identity", got ${String(isaWiring)}`);
  const sciIrq = spec.sciIrq ?? 9;
  check(Number.isInteger(sciIrq) && sciIrq >= 3 && sciIrq <= 15 && sciIrq !== 8, `sciIrq must be an ISA IRQ from 3 to 15 other than 8, got ${sciIrq}`);

  const routes: IsaRoute[] = [];
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue; // the cascade from the second 8259 has no line of its own
    const pin = irq === 0 && isaWiring === "pc" ? 2 : irq;
    // the SCI is a level-triggered, active-high PCI-style line on PIIX4 (as QEMU's tables say)
    const sci = irq === sciIrq;
    routes.push({ irq, pin, polarity: sci ? "high" : "conforms", trigger: sci ? "level" : "conforms" });
  }
  // IOAPIC ID. Without hotplug mode it stays N, after the CPUs' IDs (as every table so far said).
  // In hotplug mode it is always 0, as on QEMU: ID N would not fit v86's 4 bits (ioapic.rs keeps
  // `(value >> 24) & 0x0F`) once more than 15 CPUs are possible, and one fixed rule for every
  // count is simpler than switching at 16. Linux accepts an IOAPIC ID equal to a local APIC ID on
  // an xAPIC (io_apic_unique_id returns it as given; only pre-xAPIC parts check for a clash).
  const ioapicId = hotplug ? 0 : cpus;
  return {
    cpus,
    apicIds: Array.from({ length: cpus }, (_, i) => i),
    possibleCpus,
    hotplug,
    lapicAddress: LAPIC_ADDR,
    ioapic: { id: ioapicId, address: IOAPIC_ADDR, version: 0x11, pins: IOAPIC_PINS },
    isaWiring,
    routes,
    extIntPin: isaWiring === "pc" ? 0 : null,
    sciIrq,
  };
}

/** MPS/ACPI "MPS INTI flags": polarity in bits 0-1, trigger mode in bits 2-3. */
export function intiFlags(r: { polarity: Polarity; trigger: Trigger }): number {
  const pol = { conforms: 0, high: 1, low: 3 }[r.polarity];
  const trig = { conforms: 0, edge: 1, level: 3 }[r.trigger];
  return pol | (trig << 2);
}
