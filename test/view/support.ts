// Hand-made snapshots for the view's unit tests.
import type { PageRun, StatCounters, StatsSnapshot, VcpuStat } from "../../src/protocol/messages.ts";
import { emptyCounters } from "../../src/protocol/stats.ts";

export function snap(
  node: number,
  seq: number,
  atMs: number,
  counters: Partial<StatCounters> = {},
  more: { vcpus?: VcpuStat[]; pages?: PageRun[]; rttUs?: Record<number, number> } = {},
): StatsSnapshot {
  return {
    type: "stats",
    node,
    seq,
    atMs,
    counters: { ...emptyCounters(), ...counters },
    vcpus: more.vcpus ?? [],
    links: Object.entries(more.rttUs ?? {}).map(([peer, rttUs]) => ({ peer: Number(peer), rttUs })),
    pages: more.pages ?? [],
  };
}
