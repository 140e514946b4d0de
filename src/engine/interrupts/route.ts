// Which vCPUs an outgoing interrupt reaches, given every vCPU's APIC addressing (the table each
// node keeps from the broadcast APIC ID / LDR / DFR writes). Pure: the platform turns the result
// into local injections and messages to other nodes.

import { destinationIncludes, toIncoming } from "./decode.ts";
import type { ApicAddressing, IncomingInterrupt, OutgoingInterrupt } from "./types.ts";

export interface InterruptTarget {
  /** Index into the addressing table. */
  cpu: number;
  incoming: IncomingInterrupt;
}

/**
 * The deliveries `msg` makes. Lowest-priority goes to the first CPU its destination includes (as
 * GiantVM does; v86 models no task priorities across CPUs). Modes without effect on a receiving
 * APIC here (SMI, ExtINT, SIPI from the IOAPIC) deliver nothing.
 */
export function routeInterrupt(msg: OutgoingInterrupt, cpus: readonly ApicAddressing[]): InterruptTarget[] {
  const incoming = toIncoming(msg);
  if (!incoming) return [];
  const from = msg.source === "ipi" ? msg.from : -1;
  const hit: number[] = [];
  for (let i = 0; i < cpus.length; i++) if (destinationIncludes(msg.destination, from, cpus[i])) hit.push(i);
  const chosen = msg.mode === "lowest" ? hit.slice(0, 1) : hit;
  return chosen.map((cpu) => ({ cpu, incoming }));
}
