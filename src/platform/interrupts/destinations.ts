// Which vCPUs an interrupt reaches, computed the way the xAPIC architecture defines it, so that any
// node can decide for itself where an IPI or an IOAPIC interrupt goes (GiantVM's approach: the
// registers that matter, APIC ID, LDR and DFR, are broadcast whenever a vCPU writes them).

export type Shorthand = "none" | "self" | "all" | "all-but-self";
export type DestMode = "physical" | "logical";

/** What the destination logic needs of each vCPU's local APIC. */
export interface ApicView {
  /** xAPIC ID, 0..254 (bits 31:24 of the ID register). */
  id: number;
  /** Logical destination register bits 31:24. */
  ldr: number;
  /** Destination format register model bits 31:28: 0xF flat, 0x0 cluster. */
  dfr: number;
}

export interface Destination {
  shorthand: Shorthand;
  mode: DestMode;
  /** The 8-bit destination field (ignored for shorthands other than "none"). */
  dest: number;
  /** The sending vCPU, for "self" and "all-but-self" (null for IOAPIC deliveries). */
  source: number | null;
}

const BROADCAST = 0xff;

function logicalMatch(apic: ApicView, dest: number): boolean {
  if (dest === BROADCAST) return true;
  if (apic.dfr === 0xf) return (apic.ldr & dest) !== 0; // flat model: a bit per CPU
  // cluster model: high nibble selects the cluster, low nibble a CPU bitmask within it
  return apic.ldr >> 4 === dest >> 4 && (apic.ldr & dest & 0xf) !== 0;
}

/** The indexes (vCPU numbers) of `apics` the interrupt is delivered to, in ascending order. */
export function destinations(apics: readonly ApicView[], d: Destination): number[] {
  const all = apics.map((_, i) => i);
  switch (d.shorthand) {
    case "self":
      return d.source === null ? [] : [d.source];
    case "all":
      return all;
    case "all-but-self":
      return all.filter((i) => i !== d.source);
    case "none":
      return d.mode === "physical"
        ? all.filter((i) => d.dest === BROADCAST || apics[i]!.id === d.dest)
        : all.filter((i) => logicalMatch(apics[i]!, d.dest));
  }
}

/** Lowest-priority delivery picks one CPU of the set; like GiantVM, the first one (deterministic). */
export function lowestPriorityTarget(targets: readonly number[]): number | null {
  return targets.length ? targets[0]! : null;
}
