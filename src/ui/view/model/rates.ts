// Turns each node's cumulative snapshots into rates (per second), per node and per vCPU.
// Snapshots travel over links and through workers, so some go missing, some arrive late or twice,
// and a restarted node starts its counters (and seq) again: none of that may produce a negative or
// absurd rate. Rates use the reporting node's own clock (`atMs`), never the viewer's.

import type { LinkStat, StatCounter, StatsSnapshot, VcpuRunState } from "../../../protocol/messages.ts";
import { STAT_COUNTERS } from "../../../protocol/messages.ts";

/** The rates the panel shows, derived from the counters. */
export interface DerivedRates {
  readFaults: number;
  writeFaults: number;
  /** Grants served: pages (bytes, zero or "current") sent to another node. */
  pagesMoved: number;
  invalidations: number;
  ioForwarded: number;
  ipis: number;
  irqsForwarded: number;
  bytesSent: number;
}
export const DERIVED_RATES: readonly (keyof DerivedRates)[] = [
  "readFaults",
  "writeFaults",
  "pagesMoved",
  "invalidations",
  "ioForwarded",
  "ipis",
  "irqsForwarded",
  "bytesSent",
];

export interface VcpuRate {
  vcpu: number;
  state: VcpuRunState;
  instructions: number;
  /** null until two snapshots of this vCPU are known (or right after its counter restarted). */
  instructionsPerSec: number | null;
}

export interface NodeRates {
  node: number;
  seq: number;
  /** Viewer's clock when the latest snapshot arrived. */
  receivedMs: number;
  /** Span (node's clock) the rates were measured over; null when only a baseline is known. */
  intervalMs: number | null;
  perSecond: Record<StatCounter, number> | null;
  derived: DerivedRates | null;
  counters: Record<StatCounter, number>;
  vcpus: VcpuRate[];
  links: LinkStat[];
}

/** What happened to one snapshot. */
export type Verdict =
  | "first" // first of its node: a baseline
  | "rate" // rates computed against the previous one
  | "duplicate" // same seq as the last accepted: ignored
  | "late" // older than the last accepted: ignored
  | "reset"; // the node restarted (counters went back, or its clock did): new baseline

export interface RateHealth {
  accepted: number;
  duplicates: number;
  late: number;
  resets: number;
  /** Snapshots never seen (holes in seq). */
  missing: number;
}

/** A restarted node numbers its snapshots from 0 or 1 again. */
const RESTART_SEQ_MAX = 1;
/**
 * A snapshot can only be overtaken by a few later ones (links are ordered; only relaying or a
 * busy worker reorders). One numbered 0 or 1 that arrives after seq 5 or more, with lower
 * counters, is a restarted node, not a late snapshot.
 */
const MAX_OVERTAKEN = 4;

export function derive(perSecond: Record<StatCounter, number>): DerivedRates {
  return {
    readFaults: perSecond.readFaults,
    writeFaults: perSecond.writeFaults,
    pagesMoved: perSecond.pagesSentBytes + perSecond.pagesSentZero + perSecond.pagesSentCurrent,
    invalidations: perSecond.invalidationsSent,
    ioForwarded: perSecond.ioForwarded,
    ipis: perSecond.ipisSent,
    irqsForwarded: perSecond.irqsForwarded,
    bytesSent: perSecond.bytesSent,
  };
}

export class RateTracker {
  private readonly last = new Map<number, StatsSnapshot>();
  private readonly rates = new Map<number, NodeRates>();
  readonly health: RateHealth = { accepted: 0, duplicates: 0, late: 0, resets: 0, missing: 0 };

  /** Takes one snapshot; returns what it did with it. */
  accept(s: StatsSnapshot, receivedMs: number): Verdict {
    const prev = this.last.get(s.node);
    let verdict: Verdict;
    if (!prev) verdict = "first";
    else if (s.seq === prev.seq) verdict = s.atMs === prev.atMs ? "duplicate" : "reset";
    else if (s.seq < prev.seq)
      verdict = s.seq <= RESTART_SEQ_MAX && prev.seq - s.seq >= MAX_OVERTAKEN && anyCounterLower(s, prev) ? "reset" : "late";
    else verdict = anyCounterLower(s, prev) || s.atMs <= prev.atMs ? "reset" : "rate";

    if (verdict === "duplicate") this.health.duplicates++;
    if (verdict === "late") this.health.late++;
    if (verdict === "duplicate" || verdict === "late") return verdict;
    if (verdict === "reset") this.health.resets++;
    if (verdict === "rate") this.health.missing += s.seq - prev!.seq - 1;
    this.health.accepted++;

    const base = verdict === "rate" ? prev! : null;
    this.last.set(s.node, s);
    this.rates.set(s.node, computeRates(s, base, receivedMs));
    return verdict;
  }

  /** Latest rates of every node heard from, by node id. */
  nodes(): NodeRates[] {
    return [...this.rates.values()].sort((a, b) => a.node - b.node);
  }

  node(id: number): NodeRates | undefined {
    return this.rates.get(id);
  }

  /**
   * Cluster-wide rates: the sum of every node's latest rates, leaving out nodes not heard from in
   * `staleMs` (a silent node must not keep showing its last burst forever).
   */
  total(nowMs: number, staleMs = 3000): DerivedRates {
    const sum: DerivedRates = Object.fromEntries(
      ["readFaults", "writeFaults", "pagesMoved", "invalidations", "ioForwarded", "ipis", "irqsForwarded", "bytesSent"].map((k) => [k, 0]),
    ) as unknown as DerivedRates;
    for (const r of this.rates.values()) {
      if (!r.derived || nowMs - r.receivedMs > staleMs) continue;
      for (const k of Object.keys(sum) as (keyof DerivedRates)[]) sum[k] += r.derived[k];
    }
    return sum;
  }

  /** Forgets a node (it went offline; if it comes back, its new node starts counting again). */
  forget(node: number): void {
    this.last.delete(node);
    this.rates.delete(node);
  }

  clear(): void {
    this.last.clear();
    this.rates.clear();
    Object.assign(this.health, { accepted: 0, duplicates: 0, late: 0, resets: 0, missing: 0 });
  }
}

function anyCounterLower(s: StatsSnapshot, prev: StatsSnapshot): boolean {
  for (const c of STAT_COUNTERS) if (s.counters[c] < prev.counters[c]) return true;
  return false;
}

function computeRates(s: StatsSnapshot, prev: StatsSnapshot | null, receivedMs: number): NodeRates {
  const dt = prev ? s.atMs - prev.atMs : 0;
  let perSecond: Record<StatCounter, number> | null = null;
  if (prev && dt > 0) {
    perSecond = {} as Record<StatCounter, number>;
    for (const c of STAT_COUNTERS) perSecond[c] = ((s.counters[c] - prev.counters[c]) * 1000) / dt;
  }
  const prevVcpu = new Map(prev?.vcpus.map((v) => [v.vcpu, v]));
  const vcpus = s.vcpus
    .map((v): VcpuRate => {
      const p = prevVcpu.get(v.vcpu);
      const ips = p && dt > 0 && v.instructions >= p.instructions ? ((v.instructions - p.instructions) * 1000) / dt : null;
      return { vcpu: v.vcpu, state: v.state, instructions: v.instructions, instructionsPerSec: ips };
    })
    .sort((a, b) => a.vcpu - b.vcpu);
  return {
    node: s.node,
    seq: s.seq,
    receivedMs,
    intervalMs: perSecond ? dt : null,
    perSecond,
    derived: perSecond ? derive(perSecond) : null,
    counters: { ...s.counters },
    vcpus,
    links: s.links.map((l) => ({ ...l })),
  };
}
