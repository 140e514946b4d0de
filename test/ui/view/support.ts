// Hand-made snapshots for the view's unit tests, and what the VM browser tests check in a trace file.
import type { PageRun, StatCounters, StatsSnapshot, VcpuStat } from "../../../src/protocol/messages.ts";
import { emptyCounters } from "../../../src/protocol/stats.ts";
import type { ChromeTrace } from "../../../src/ui/view/model/trace.ts";

/** A downloaded trace's track names, the processes (pid = node + 1) with faults and with pages sent, and events outside the recording. */
export function summarizeTrace(trace: ChromeTrace) {
  const tracks = trace.traceEvents.flatMap((e) => (e.ph === "M" && (e.name === "process_name" || e.name === "thread_name") ? [String(e.args.name)] : []));
  const real = trace.traceEvents.filter((e) => e.ph === "X" || e.ph === "i");
  const pids = (events: typeof real) => [...new Set(events.map((e) => e.pid))].sort((a, b) => a - b);
  const faults = real.filter((e) => e.ph === "X" && / fault$/.test(e.name));
  const pagesSent = real.filter((e) => e.name.startsWith("page"));
  const spanUs = Number(trace.otherData.recordedMs) * 1000;
  return {
    tracks,
    faults: faults.length,
    pagesSent: pagesSent.length,
    /** Forwarded I/O slices (client and served), per process. */
    io: Object.fromEntries(pids(real.filter((e) => e.cat === "io")).map((pid) => [pid, real.filter((e) => e.cat === "io" && e.pid === pid).length])),
    faultPids: pids(faults),
    pageSentPids: pids(pagesSent),
    spanUs,
    /** Times are µs from the recording's start, so nodes' clocks that were aligned put every event inside it. */
    outsideRecording: real.filter((e) => !(e.ts >= 0 && e.ts <= spanUs + 1000)),
  };
}

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
