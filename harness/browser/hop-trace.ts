// Collects a hop trace (src/runtime/links/hop-trace.ts) from every tab and worker of a browser
// context's origin, and reads round trips out of it: the bench's breakdown of the IPI round trip
// between two tabs (issue 15).

import type { BrowserContext, Page } from "playwright-core";
import { HOP_POINTS, HOP_TRACE_CHANNEL, type HopPoint, type HopTraceMessage } from "../../src/runtime/links/hop-trace.ts";
import type { MessageType } from "../../src/protocol/messages.ts";

/** One frame's passage of one hop: which thread saw it where, when (wall-clock ms). */
export interface HopEvent {
  thread: string;
  point: HopPoint;
  at: number;
}

export interface HopTraceCollector {
  /**
   * Stops the trace in every thread and returns every event, in time order; waits for the final
   * batch of each thread in `expect` (e.g. "node 0", "net 1").
   */
  stop(expect?: string[]): Promise<HopEvent[]>;
}

/** How long stop() waits for the expected threads' final batches. */
const STOP_WAIT_MS = 15_000;

/** Traces started by this process: each start's id. */
let traces = 0;

/**
 * Opens a page of the origin at `url` that starts a trace of `type` frames in every thread that has
 * joined or joins later (workers started after this call ask for it), until stop().
 */
export async function startHopTrace(ctx: BrowserContext, url: string, type: MessageType): Promise<HopTraceCollector> {
  const page: Page = await ctx.newPage();
  await page.goto(url);
  await page.evaluate(
    ([name, traced, id]) => {
      const g = globalThis as unknown as { hopTrace: { got: HopTraceMessage[]; channel: BroadcastChannel } };
      const channel = new BroadcastChannel(name);
      g.hopTrace = { got: [], channel };
      channel.onmessage = (e: MessageEvent<HopTraceMessage>) => {
        if (e.data.kind === "hops") g.hopTrace.got.push(e.data);
        else if (e.data.kind === "joined") channel.postMessage({ kind: "start", id, type: traced });
      };
      channel.postMessage({ kind: "start", id, type: traced });
    },
    [HOP_TRACE_CHANNEL, type, ++traces] as const,
  );
  return {
    async stop(expect: string[] = []) {
      await page.evaluate(() => (globalThis as unknown as { hopTrace: { channel: BroadcastChannel } }).hopTrace.channel.postMessage({ kind: "stop" }));
      // Each thread posts what it kept when its event loop takes the stop (a vCPU worker takes it
      // between slices): wait for the final batch of every expected thread (a loaded machine took
      // over 1.5 s, and a trace cut short loses its last round trips), then a moment for the rest.
      const finals = () =>
        page.evaluate(() => (globalThis as unknown as { hopTrace: { got: HopTraceMessage[] } }).hopTrace.got.filter((m) => m.kind === "hops" && m.final).map((m) => (m as { thread: string }).thread));
      const until = Date.now() + STOP_WAIT_MS;
      for (let have = await finals(); expect.some((t) => !have.includes(t)); have = await finals()) {
        if (Date.now() > until) throw new Error(`the hop trace's threads ${expect.filter((t) => !have.includes(t)).join(", ")} did not answer its stop within ${STOP_WAIT_MS / 1000} s`);
        await page.waitForTimeout(100);
      }
      await page.waitForTimeout(expect.length ? 200 : 1500);
      const got = await page.evaluate(() => (globalThis as unknown as { hopTrace: { got: HopTraceMessage[] } }).hopTrace.got);
      await page.close();
      return eventsOf(got);
    },
  };
}

export function eventsOf(messages: HopTraceMessage[]): HopEvent[] {
  const events: HopEvent[] = [];
  for (const m of messages) {
    if (m.kind !== "hops") continue;
    m.points.forEach((p, i) => events.push({ thread: m.thread, point: HOP_POINTS[p]!, at: m.times[i]! }));
  }
  return events.sort((a, b) => a.at - b.at);
}

/**
 * The hops of a round trip from node `a` (in one tab) to node `b` (in another) and back, in order.
 * `netOf(n)`: the thread reading node n's tab's channels (its net worker); `writerOf(n)`: the thread
 * writing n's frames on a channel (its net worker, or the node itself on its own channel).
 */
export function roundTripHops(a: number, b: number, netOf: (node: number) => string, writerOf = netOf): { thread: string; point: HopPoint; label: string }[] {
  const na = netOf(a);
  const nb = netOf(b);
  const wa = writerOf(a);
  const wb = writerOf(b);
  return [
    { thread: `node ${a}`, point: "send", label: `node ${a} sends` },
    { thread: wa, point: "net-out", label: `${wa} writes it on the channel` },
    { thread: nb, point: "net-in", label: `${nb} reads it` },
    { thread: `node ${b}`, point: "receive", label: `node ${b} handles it` },
    { thread: `node ${b}`, point: "send", label: `node ${b} answers` },
    { thread: wb, point: "net-out", label: `${wb} writes the answer` },
    { thread: na, point: "net-in", label: `${na} reads it` },
    { thread: `node ${a}`, point: "receive", label: `node ${a} handles it` },
  ];
}

/**
 * Every complete round trip in `events` along `hops` (each starts at hops[0] and takes the next
 * event of each further hop within `withinMs`), as the times between consecutive hops (ms).
 * An event that starts no complete round trip is skipped, so the other traffic of the phase
 * (a round trip's start with its answer lost to the trace's edges) never shifts the rest.
 */
export function roundTrips(events: HopEvent[], hops: { thread: string; point: HopPoint }[], withinMs = 100): number[][] {
  const out: number[][] = [];
  const is = (e: HopEvent, h: { thread: string; point: HopPoint }) => e.thread === h.thread && e.point === h.point;
  for (let i = 0; i < events.length; i++) {
    if (!is(events[i]!, hops[0]!)) continue;
    const t0 = events[i]!.at;
    const at = [t0];
    let j = i;
    for (const h of hops.slice(1)) {
      j++;
      while (j < events.length && !is(events[j]!, h) && events[j]!.at - t0 < withinMs) j++;
      if (j >= events.length || events[j]!.at - t0 >= withinMs) break;
      at.push(events[j]!.at);
    }
    if (at.length < hops.length) continue;
    out.push(at.slice(1).map((t, k) => t - at[k]!));
    i = j;
  }
  return out;
}
