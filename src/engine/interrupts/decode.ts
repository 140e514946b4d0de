// Decoding ICR and IOAPIC redirection entries (Intel SDM vol. 3 ch. 11; 82093AA datasheet), and
// deciding whether a destination includes a given local APIC.

import type { ApicAddressing, DeliveryMode, Destination, IncomingInterrupt, IoapicMessage, IpiMessage, OutgoingInterrupt, Shorthand } from "./types.ts";

const MODES: (DeliveryMode | undefined)[] = ["fixed", "lowest", "smi", undefined, "nmi", "init", "startup", "extint"];
const SHORTHANDS: Shorthand[] = ["none", "self", "all", "all-but-self"];

export class InterruptDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterruptDecodeError";
  }
}

function mode(low: number, what: string): DeliveryMode {
  const m = MODES[(low >>> 8) & 7];
  if (!m) throw new InterruptDecodeError(`${what} 0x${(low >>> 0).toString(16)} uses the reserved delivery mode 3`);
  return m;
}

/** An ICR write (low dword as written, high dword as stored) by the APIC whose ID register is `fromIdReg`. */
export function decodeIcr(icrLow: number, icrHigh: number, fromIdReg: number): IpiMessage {
  const m = mode(icrLow, "ICR");
  // The IOAPIC's redirection-entry mode 6 is reserved; in the ICR it is the start-up IPI.
  return {
    source: "ipi",
    vector: icrLow & 0xff,
    mode: m,
    trigger: icrLow & (1 << 15) ? "level" : "edge",
    assert: (icrLow & (1 << 14)) !== 0,
    destination: { mode: icrLow & (1 << 11) ? "logical" : "physical", value: icrHigh >>> 24, shorthand: SHORTHANDS[(icrLow >>> 18) & 3] },
    from: fromIdReg >>> 24,
    icrLow: icrLow >>> 0,
    icrHigh: icrHigh >>> 0,
  };
}

export function decodeRedirection(irq: number, entryLow: number, entryHigh: number): IoapicMessage {
  return {
    source: "ioapic",
    irq,
    vector: entryLow & 0xff,
    mode: mode(entryLow, `IOAPIC redirection entry ${irq}`),
    trigger: entryLow & (1 << 15) ? "level" : "edge",
    destination: { mode: entryLow & (1 << 11) ? "logical" : "physical", value: entryHigh >>> 24, shorthand: "none" },
    entryLow: entryLow >>> 0,
    entryHigh: entryHigh >>> 0,
  };
}

/** True for an INIT de-assert IPI (mode INIT, level trigger, level bit clear): no effect on modern CPUs. */
export function isInitDeassert(msg: OutgoingInterrupt): boolean {
  return msg.source === "ipi" && msg.mode === "init" && msg.trigger === "level" && !msg.assert;
}

/**
 * Whether `dest` (sent by the APIC with ID `fromId`) includes `apic`. Logical mode follows the DFR
 * model of the receiving APIC: flat (DFR 31:28 = 0xF) matches when LDR & mask != 0; cluster (0x0)
 * when the high nibbles are equal (0xF = all clusters) and the low nibbles intersect.
 */
export function destinationIncludes(dest: Destination, fromId: number, apic: ApicAddressing): boolean {
  const id = apic.id >>> 24;
  switch (dest.shorthand) {
    case "self":
      return id === fromId;
    case "all":
      return true;
    case "all-but-self":
      return id !== fromId;
    case "none":
      break;
  }
  if (dest.mode === "physical") return dest.value === 0xff || dest.value === id;
  const ldr = apic.ldr >>> 24;
  if (dest.value === 0xff) return true;
  if (apic.dfr >>> 28 === 0xf) return (ldr & dest.value) !== 0;
  const cluster = dest.value >>> 4;
  return (cluster === 0xf || cluster === ldr >>> 4) && (ldr & dest.value & 0xf) !== 0;
}

/** Whether an outgoing interrupt includes `apic` (IOAPIC messages come from no APIC). */
export function includes(msg: OutgoingInterrupt, apic: ApicAddressing): boolean {
  return destinationIncludes(msg.destination, msg.source === "ipi" ? msg.from : -1, apic);
}

/** The incoming interrupt a target APIC receives for `msg`, or null when it has no effect there. */
export function toIncoming(msg: OutgoingInterrupt): IncomingInterrupt | null {
  switch (msg.mode) {
    case "fixed":
    case "lowest":
      return { kind: "fixed", vector: msg.vector, trigger: msg.trigger };
    case "nmi":
      return { kind: "nmi" };
    case "init":
      return isInitDeassert(msg) ? { kind: "init-deassert" } : { kind: "init" };
    case "startup":
      return msg.source === "ipi" ? { kind: "startup", vector: msg.vector } : null;
    case "smi":
    case "extint":
      // v86 has no SMM, and ExtINT (the 8259 through the APIC) stays on the node that has the PIC.
      return null;
  }
}
