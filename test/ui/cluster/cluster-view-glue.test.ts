// The page's glue between a cluster VM and the live view (src/ui/cluster/cluster-view.ts): what the
// cluster delivers becomes inputs the view's model accepts, with the VM's shape, this tab's node and
// report times moved to the page's clock; the view's knob and trace act on the cluster.

import { expect, it } from "vitest";
import { decode, encode } from "../../../src/protocol/codec.ts";
import { emptyCounters } from "../../../src/protocol/stats.ts";
import { clusterControls, clusterViewConfig, feedFromCluster } from "../../../src/ui/cluster/cluster-view.ts";
import { LiveModel } from "../../../src/ui/view/model/live-model.ts";
import { type ViewEvent, ViewFeed } from "../../../src/protocol/telemetry/inputs.ts";

it("feeds the model every node's snapshots and reports, with the VM's shape and this tab's node", () => {
  const feed = new ViewFeed();
  const model = new LiveModel();
  feed.subscribe((i) => void model.ingest(i));
  const shown: string[] = [];
  const view = { setLocalNode: (n: number | null) => void shown.push(`local ${n}`), showLinkDelay: (ms: number) => void shown.push(`knob ${ms}`) };
  const origin = 1_700_000_000_000;
  const sink = feedFromCluster(feed, view, () => 1, { timeOrigin: origin, now: () => 50 });

  sink.config({ vcpus: 2, memoryMiB: 64, guest: "linux" });
  expect(model.config).toEqual(clusterViewConfig({ vcpus: 2, memoryMiB: 64, guest: "linux" }));
  expect(model.config).toMatchObject({ nodes: 2, memoryPages: 64 * 256, vcpuHome: [0, 1] });
  for (const node of [0, 1]) {
    // As it arrives from the wire: a codec frame, decoded.
    const snap = decode(encode({ type: "stats", node, seq: 1, atMs: 10, counters: emptyCounters(), vcpus: [{ vcpu: node, state: "running", instructions: 5 }], links: [], pages: node === 1 ? [{ first: 8, count: 4, state: "modified" }] : [] }));
    if (snap.type !== "stats") throw new Error("not stats");
    sink.stats(snap);
  }
  model.trace.start(0);
  sink.report({ node: 1, movesSeq: 1, moves: [{ page: 8, to: 0, count: 2 }], ipiCounts: [{ src: 1, dest: 0, kind: "fixed", count: 4 }], events: [{ type: "fault", node: 1, vcpu: 1, page: 8, access: "write", startMs: origin + 20, endMs: origin + 21 }], droppedEvents: 0 });
  sink.controls({ delayMs: 20, tracing: true });

  expect(model.health.rejected).toBe(0);
  expect(model.pageMap!.ownerOf(8)).toBe(1);
  expect(model.ipis.count(1, 0, "fixed")).toBe(4);
  expect(model.trace.count).toBe(1);
  expect(shown).toEqual(["local 1", "knob 20"]);
});

it("sends the view's knob and trace events to the cluster once this tab is in one", () => {
  const listeners: ((e: ViewEvent) => void)[] = [];
  const view = { on: (l: (e: ViewEvent) => void) => (listeners.push(l), () => {}) };
  const calls: string[] = [];
  let vm: { setLinkDelay(ms: number): void; setTracing(on: boolean): void } | null = null;
  clusterControls(view, () => vm);
  listeners.forEach((l) => l({ kind: "set-link-delay", ms: 5 })); // not in a cluster yet: nothing to act on
  vm = { setLinkDelay: (ms) => void calls.push(`delay ${ms}`), setTracing: (on) => void calls.push(`trace ${on}`) };
  listeners.forEach((l) => l({ kind: "set-link-delay", ms: 20 }));
  listeners.forEach((l) => l({ kind: "trace", recording: true }));
  listeners.forEach((l) => l({ kind: "trace-exported", fileName: "x.json", events: 1 }));
  expect(calls).toEqual(["delay 20", "trace true"]);
});
