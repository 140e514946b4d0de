// The hop trace: wall-clock times at which frames of one message type pass each hop between two
// nodes in different tabs (the sender's worker, its tab's net worker, the other tab's net worker,
// the receiver's worker). Why: an IPI round trip between tabs costs a few raw data-channel round
// trips (issue 15), and only the time spent at each hop says which thread adds it. A diagnostic for
// the bench, off unless a collector starts it: every thread that joined listens on one
// BroadcastChannel of the origin, so a single page collects every tab's and every worker's times.
// Times are performance.timeOrigin + performance.now() (ms); within one tab (one process) they are
// one clock, across tabs the two one-way hops may be skewed by the same amount in opposite
// directions, so their sum is the figure to trust.

import { frameType } from "../../protocol/codec.ts";
import type { MessageType } from "../../protocol/messages.ts";

export const HOP_TRACE_CHANNEL = "giantweb-hop-trace";

/** Where a frame was seen: handed to the links, sent on the VM channel, read from it, handled by the receiving node. */
export type HopPoint = "send" | "net-out" | "net-in" | "receive";
export const HOP_POINTS: readonly HopPoint[] = ["send", "net-out", "net-in", "receive"];

export type HopTraceMessage =
  /**
   * The collector: record frames of `type` from now on, forgetting what was kept. Said again (same
   * `id`) to each thread that joins later; a thread already in trace `id` ignores it.
   */
  | { kind: "start"; id: number; type: MessageType }
  /** The collector: stop, and post what was kept. */
  | { kind: "stop" }
  /** A thread joined (a worker that started after the collector did): the collector answers with `start`. */
  | { kind: "joined"; thread: string }
  /**
   * A thread's times: `points[i]` is an index into HOP_POINTS, seen at `times[i]`. `final`: its
   * answer to `stop` (sent even when empty), so a collector can wait for every thread it expects.
   */
  | { kind: "hops"; thread: string; points: number[]; times: number[]; final?: true };

/** Events a thread keeps before it posts them on its own (so a long trace never piles up). */
const BATCH = 512;

let channel: BroadcastChannel | null = null;
let thread = "";
let traced: MessageType | null = null;
let traceId = -1;
let points: number[] = [];
let times: number[] = [];

/**
 * This thread takes part in hop traces as `name` (e.g. "node 1", or "net 0" for the net worker of the tab running node 0). A no-op where there
 * is no BroadcastChannel; a second call only renames the thread.
 */
export function joinHopTrace(name: string): void {
  thread = name;
  if (channel || typeof BroadcastChannel === "undefined") return;
  channel = new BroadcastChannel(HOP_TRACE_CHANNEL);
  channel.onmessage = (e: MessageEvent<HopTraceMessage>) => {
    const m = e.data;
    if (m?.kind === "start") {
      if (traced !== null && m.id === traceId) return;
      traceId = m.id;
      traced = m.type;
      points = [];
      times = [];
    } else if (m?.kind === "stop") {
      post(true);
      traced = null;
    }
  };
  channel.postMessage({ kind: "joined", thread } satisfies HopTraceMessage);
}

/** Whether frames of `type` are being traced now: one comparison when no trace runs. */
export function hopTraced(type: MessageType | null): boolean {
  return traced !== null && type === traced;
}

/** The same for an encoded frame (read only while a trace runs). */
export function hopTracedFrame(frame: Uint8Array): boolean {
  return traced !== null && frameType(frame) === traced;
}

/** Records that a traced frame passed `point` now. Call only when hopTraced said yes. */
export function hopSeen(point: HopPoint): void {
  points.push(HOP_POINTS.indexOf(point));
  times.push(performance.timeOrigin + performance.now());
  if (points.length >= BATCH) post();
}

function post(final = false): void {
  if (!channel || (points.length === 0 && !final)) return;
  const m: HopTraceMessage = { kind: "hops", thread, points, times, ...(final ? { final: true as const } : {}) };
  points = [];
  times = [];
  channel.postMessage(m);
}
