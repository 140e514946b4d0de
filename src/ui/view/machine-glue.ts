// Between the live view and a VM in this tab (TabMachine): the nodes' snapshots and view reports
// become ViewInputs (with the nodes' wall-clock times moved to this page's clock), and the view's
// knob and trace events become the machine's controls.

import type { NodeViewReport } from "../../runtime/web/node-protocol.ts";
import { statsInput } from "./frames.ts";
import type { TraceEvent, ViewFeed, ViewInput } from "../../protocol/telemetry/inputs.ts";
import type { LiveViewHandle } from "./panel.ts";

/** What the view drives on the machine (TabMachine has both). */
export interface ViewControls {
  setLinkDelay(ms: number): void;
  setTracing(on: boolean): void;
}

/** An event whose wall-clock times (ms since the epoch) are moved to a clock that starts at `origin`. */
export function shiftEvent(e: TraceEvent, origin: number): TraceEvent {
  switch (e.type) {
    case "fault":
    case "io":
      return { ...e, startMs: e.startMs - origin, endMs: e.endMs - origin };
    case "page-sent":
    case "invalidate":
    case "ipi":
      return { ...e, atMs: e.atMs - origin };
  }
}

/**
 * A node's report as view inputs. `origin` is this page's performance.timeOrigin (the nodes stamp
 * events with timeOrigin + now of their worker, the same wall clock), `nowMs` this page's now.
 */
export function reportInputs(report: NodeViewReport, origin: number, nowMs: number): ViewInput[] {
  const inputs: ViewInput[] = [
    { kind: "page-moves", node: report.node, seq: report.movesSeq, receivedMs: nowMs, moves: report.moves },
    { kind: "ipi-counts", node: report.node, counts: report.ipiCounts },
  ];
  if (report.events.length > 0) inputs.push({ kind: "events", events: report.events.map((e) => shiftEvent(e, origin)) });
  return inputs;
}

/** The TabMachine layout callbacks that feed `feed` (spread them into the layout). */
export function feedFromNodes(feed: ViewFeed, clock: { timeOrigin: number; now(): number } = performance) {
  return {
    onStats: (frame: Uint8Array) => feed.push(statsInput(frame, clock.now())),
    onView: (report: NodeViewReport) => {
      for (const input of reportInputs(report, clock.timeOrigin, clock.now())) feed.push(input);
    },
  };
}

/**
 * Sends the view's knob and trace events to `machine()` (a function: the machine exists only once
 * booted; events before that are remembered and applied when `apply` is called with it).
 */
export function connectControls(view: Pick<LiveViewHandle, "on">, machine: () => ViewControls | null): { apply(m: ViewControls): void; off(): void } {
  let delayMs = 0;
  let tracing = false;
  const off = view.on((e) => {
    if (e.kind === "set-link-delay") delayMs = e.ms;
    else if (e.kind === "trace") tracing = e.recording;
    else return;
    const m = machine();
    if (m) apply(m);
  });
  function apply(m: ViewControls): void {
    m.setLinkDelay(delayMs);
    m.setTracing(tracing);
  }
  return { apply, off };
}
