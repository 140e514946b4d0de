// The node side of the live view on the real VM: the latency knob on a node's own links
// (SendDelay), link round trips (RttProbe), and what a node records for the view (NodeViewRecorder)
// through the optional observers of the real DsmAgent and InterruptRouter, then how the page turns
// a node's report into view inputs (machine-glue) that the view's model accepts.

import { describe, expect, it } from "vitest";
import { delayLinks, SendDelay, type DelayableLinks } from "../../../src/runtime/links/link-delay.ts";
import { RttProbe } from "../../../src/runtime/links/link-rtt.ts";
import { NodeViewRecorder } from "../../../src/runtime/node/view-recorder.ts";
import { InterruptRouter } from "../../../src/machine/interrupts/router.ts";
import { DsmAgent, type FrameLinks, type PageMemory } from "../../../src/runtime/node/dsm-agent.ts";
import { IoClient, IoServer } from "../../../src/machine/devices/io-forwarding.ts";
import { DsmNode } from "../../../src/protocol/dsm/node.ts";
import type { Message } from "../../../src/protocol/messages.ts";
import { connectControls, reportInputs, shiftEvent } from "../../../src/ui/view/machine-glue.ts";
import { LiveModel } from "../../../src/ui/view/model/live-model.ts";
import type { ViewEvent } from "../../../src/protocol/telemetry/inputs.ts";

/** Links that record what reaches them. */
function recordingLinks() {
  const sent: { to: number; frame: Uint8Array }[] = [];
  const waits: number[] = [];
  const links: DelayableLinks = {
    send: (to, frame) => void sent.push({ to, frame }),
    flush: () => true,
    waitForTraffic: (ms) => void waits.push(ms),
  };
  return { links, sent, waits };
}
const bytes = (n: number) => Uint8Array.of(n);

describe("SendDelay (the latency knob on a node's links)", () => {
  it("passes frames straight on without delay, and holds them for the delay with it", () => {
    let t = 1000;
    let delay = 0;
    const r = recordingLinks();
    const d = new SendDelay(r.links, () => delay, () => t);
    d.send(1, bytes(1));
    expect(r.sent.map((s) => s.frame[0])).toEqual([1]);
    delay = 10;
    d.send(1, bytes(2));
    d.send(2, bytes(3));
    expect(d.held).toBe(2);
    t = 1009.9;
    d.flush();
    expect(r.sent.length).toBe(1);
    t = 1010;
    expect(d.flush()).toBe(true);
    expect(r.sent.map((s) => [s.to, s.frame[0]])).toEqual([[1, 1], [1, 2], [2, 3]]);
  });

  it("keeps the order when the delay drops while frames are held", () => {
    let t = 0;
    let delay = 20;
    const r = recordingLinks();
    const d = new SendDelay(r.links, () => delay, () => t);
    d.send(1, bytes(1));
    delay = 0;
    d.send(1, bytes(2)); // must not overtake frame 1
    expect(r.sent).toEqual([]);
    t = 20;
    d.flush();
    expect(r.sent.map((s) => s.frame[0])).toEqual([1, 2]);
    d.send(1, bytes(3)); // nothing held, no delay: straight on
    expect(r.sent.map((s) => s.frame[0])).toEqual([1, 2, 3]);
  });

  it("waits no longer than until the next held frame is due, and clamps the delay to 0..50 ms", () => {
    let t = 0;
    const r = recordingLinks();
    const d = new SendDelay(r.links, () => 500, () => t);
    d.send(1, bytes(1));
    d.waitForTraffic(20);
    expect(r.waits).toEqual([20]);
    t = 45;
    d.waitForTraffic(20);
    expect(r.waits).toEqual([20, 5]); // due at 50 (the clamp), not at 500
    t = 50;
    d.waitForTraffic(20); // due now: released, then an ordinary wait
    expect(r.sent.length).toBe(1);
    expect(r.waits).toEqual([20, 5, 20]);
  });

  it("delayLinks routes an existing links object's methods through the delay", () => {
    let t = 0;
    const r = recordingLinks();
    const obj = { ...r.links };
    const d = delayLinks(obj, () => 5, () => t);
    obj.send(3, bytes(9));
    expect(d.held).toBe(1);
    t = 5;
    obj.flush();
    expect(r.sent).toEqual([{ to: 3, frame: bytes(9) }]);
  });
});

describe("RttProbe", () => {
  it("measures the round trip of a ping through the links, median of the recent samples", () => {
    let t = 0;
    const toB: { from: number; msg: Message }[] = [];
    const toA: { from: number; msg: Message }[] = [];
    const a = new RttProbe(0, [0, 1], (to, msg) => (expect(to).toBe(1), void toB.push({ from: 0, msg })), () => t);
    const b = new RttProbe(1, [0, 1], (to, msg) => (expect(to).toBe(0), void toA.push({ from: 1, msg })), () => t + 12345);
    expect(a.links()).toEqual([]);
    for (const rtt of [4, 40, 6]) {
      a.ping();
      t += rtt / 2;
      for (const m of toB.splice(0)) expect(b.onMessage(m.from, m.msg)).toBe(true);
      t += rtt / 2;
      for (const m of toA.splice(0)) expect(a.onMessage(m.from, m.msg)).toBe(true);
    }
    expect(a.links()).toEqual([{ peer: 1, rttUs: 6000 }]);
    expect(a.onMessage(1, { type: "eoi", vcpu: 1, vector: 0x30 })).toBe(false);
  });
});

/** Two DSM agents in one thread: a node blocked on a fault lets the other one run (waitForTraffic). */
function twoNodes(pages = 8) {
  const queues: { from: number; frame: Uint8Array }[][] = [[], []];
  const agents: DsmAgent[] = [];
  const mem = (self: number): PageMemory => {
    const state = new Array<string>(pages).fill(self === 0 ? "write" : "none");
    const ram = new Uint8Array(pages * 4096);
    return {
      setPageAccess: (p, s) => void (state[p] = s),
      revoke: (p, to) => ((state[p] = to), ram.slice(p * 4096, (p + 1) * 4096)),
      writePage: (p, b) => ram.set(b, p * 4096),
    };
  };
  const links = (self: number): FrameLinks => ({
    send: (to, frame) => void queues[to]!.push({ from: self, frame }),
    receive: () => queues[self]!.shift() ?? null,
    flush: () => true,
    waitForTraffic: () => agents[1 - self]!.poll(),
  });
  for (const self of [0, 1]) agents.push(new DsmAgent(new DsmNode({ self, nodes: 2, pages }), mem(self), links(self)));
  return agents as [DsmAgent, DsmAgent];
}

describe("NodeViewRecorder on the real DsmAgent and InterruptRouter", () => {
  it("counts the pages a node sent and, while tracing, records page-sent and invalidate events", () => {
    const [a, b] = twoNodes();
    let tracing = false;
    let t = 100;
    const ra = new NodeViewRecorder(0, () => tracing, () => t);
    const rb = new NodeViewRecorder(1, () => tracing, () => t);
    a.observer = ra;
    b.observer = rb;
    b.fault(4, "write"); // node 0 owns every page at start: it sends page 4 to node 1
    b.fault(5, "write");
    let ra1 = ra.take();
    expect(ra1.moves).toEqual([
      { page: 4, to: 1, count: 1 },
      { page: 5, to: 1, count: 1 },
    ]);
    expect(ra1.events).toEqual([]); // not tracing: nothing recorded
    tracing = true;
    t = 200;
    b.fault(6, "read"); // a read also moves ownership to the reader; node 0 keeps a copy
    t = 300;
    b.fault(6, "write"); // node 1 now writes: node 0's copy is invalidated
    ra1 = ra.take();
    expect(ra1.movesSeq).toBe(2);
    expect(ra1.moves).toEqual([{ page: 6, to: 1, count: 1 }]);
    // Never-written pages travel as "zero" (no bytes).
    expect(ra1.events).toEqual([
      { type: "page-sent", node: 0, to: 1, page: 6, form: "zero", atMs: 200 },
      { type: "invalidate", node: 0, page: 6, by: 1, atMs: 300 },
    ]);
    expect(rb.take().moves).toEqual([]);
    // After the report, moves and events start over.
    expect(ra.take()).toMatchObject({ moves: [], events: [], droppedEvents: 0 });
    // Faults are recorded as the worker times them.
    ra.fault(0, 7, "read", 10, 12);
    expect(ra.take().events).toEqual([{ type: "fault", node: 0, vcpu: 0, page: 7, access: "read", startMs: 10, endMs: 12 }]);
  });

  it("counts the IPIs and IRQs the router forwards, by destination and kind", () => {
    const sent: Message[] = [];
    const router = new InterruptRouter(0, 0, [0, 1], 0, (_to, m) => void sent.push(m), { inject: () => {}, ioapicEoi: () => {} });
    const rec = new NodeViewRecorder(0, () => true, () => 5);
    router.observer = rec.interrupt;
    const dest = { mode: "physical" as const, value: 1, shorthand: "none" as const };
    router.onSend({ source: "ipi", from: 0, assert: true, icrLow: 0, icrHigh: 0, vector: 0xfd, mode: "fixed", trigger: "edge", destination: dest });
    router.onSend({ source: "ipi", from: 0, assert: true, icrLow: 0, icrHigh: 0, vector: 0xfd, mode: "fixed", trigger: "edge", destination: dest });
    router.onSend({ source: "ioapic", irq: 4, entryLow: 0, entryHigh: 0, vector: 0x24, mode: "fixed", trigger: "edge", destination: dest });
    expect(sent.map((m) => m.type)).toEqual(["ipi", "ipi", "irq"]);
    const r = rec.take();
    expect(r.ipiCounts).toEqual([
      { src: 0, dest: 1, kind: "fixed", count: 2 },
      { src: 0, dest: 1, kind: "irq", count: 1 },
    ]);
    expect(r.events.filter((e) => e.type === "ipi")).toHaveLength(3);
    expect(r.events[0]).toEqual({ type: "ipi", node: 0, src: 0, dest: 1, kind: "fixed", vector: 0xfd, atMs: 5 });
  });

  it("bounds the events kept between two reports and counts the rest as dropped", () => {
    const rec = new NodeViewRecorder(1, () => true, () => 0);
    for (let i = 0; i < 50_010; i++) rec.fault(1, i, "write", 0, 1);
    const r = rec.take();
    expect(r.events.length).toBe(50_000);
    expect(r.droppedEvents).toBe(10);
  });
});

describe("NodeViewRecorder on the real IoClient and IoServer (forwarded I/O in the trace)", () => {
  it("records a client's forwarded read from request to reply and its writes, and the device node's served requests, only while tracing", () => {
    let t = 100;
    let tracing = true;
    const client = new NodeViewRecorder(1, () => tracing, () => t);
    const device = new NodeViewRecorder(0, () => tracing, () => t);
    const ports = new Map<number, number>([[0x3fd, 0x60]]);
    const toClient: Message[] = [];
    const server = new IoServer({ read: (p) => ports.get(p) ?? 0xff, write: (p, _s, v) => void ports.set(p, v) }, (_to, m) => void toClient.push(m));
    server.observer = device.io;
    // The client's "network": its sends reach the server; blocking delivers the server's replies 2 ms later.
    const io = new IoClient(
      {
        send: (_to, m) => server.onRequest(1, m as Parameters<IoServer["onRequest"]>[1]),
        block: (done) => {
          t += 2;
          for (const m of toClient.splice(0)) if (m.type === "io-reply") io.onReply(m);
          if (!done()) throw new Error("no reply");
        },
      },
      1,
    );
    io.observer = client.io;
    expect(io.read(0x3fd, 1)).toBe(0x60); // the logic is unchanged by the observer
    io.write(0x3f8, 1, 0x41);
    io.mmioWrite(0xfec00000, 4, 7);
    tracing = false;
    io.write(0x3f8, 1, 0x42); // not recorded
    expect(ports.get(0x3f8)).toBe(0x42);
    expect(client.take().events).toEqual([
      { type: "io", node: 1, vcpu: 1, op: "port-read", addr: 0x3fd, startMs: 100, endMs: 102 },
      { type: "io", node: 1, vcpu: 1, op: "port-write", addr: 0x3f8, startMs: 102, endMs: 102 },
      { type: "io", node: 1, vcpu: 1, op: "mmio-write", addr: 0xfec00000, startMs: 102, endMs: 102 },
    ]);
    expect(device.take().events.map((e) => e.type === "io" && [e.node, e.vcpu, e.op, e.addr])).toEqual([
      [0, 1, "port-read", 0x3fd],
      [0, 1, "port-write", 0x3f8],
      [0, 1, "mmio-write", 0xfec00000],
    ]);
  });
});

describe("machine glue: node reports as view inputs, view events as machine controls", () => {
  it("moves the nodes' wall-clock times to the page's clock and feeds a model that accepts them", () => {
    const origin = 1_700_000_000_000;
    expect(shiftEvent({ type: "fault", node: 1, vcpu: 1, page: 3, access: "write", startMs: origin + 10, endMs: origin + 12.5 }, origin)).toMatchObject({ startMs: 10, endMs: 12.5 });
    const model = new LiveModel();
    model.ingest({ kind: "config", config: { type: "config", nodes: 2, memoryPages: 64, vcpuHome: [0, 1], readTakesOwnership: true, guest: "linux" } });
    model.trace.start(0);
    const inputs = reportInputs(
      {
        node: 0,
        movesSeq: 1,
        moves: [{ page: 9, to: 1, count: 7 }],
        ipiCounts: [{ src: 0, dest: 1, kind: "fixed", count: 3 }],
        events: [
          { type: "page-sent", node: 0, to: 1, page: 9, form: "bytes", atMs: origin + 5 },
          { type: "fault", node: 1, vcpu: 1, page: 9, access: "write", startMs: origin + 4, endMs: origin + 6 },
        ],
        droppedEvents: 0,
      },
      origin,
      50,
    );
    for (const i of inputs) expect(model.ingest(i)).toBe(true);
    expect(model.health.rejected).toBe(0);
    expect(model.hotSource).toBe("reports");
    expect(model.hot.top(1, 50)[0]).toMatchObject({ page: 9 });
    expect(model.trace.count).toBe(2);
    // A report without events adds no events input.
    expect(reportInputs({ node: 1, movesSeq: 1, moves: [], ipiCounts: [], events: [], droppedEvents: 0 }, origin, 0).map((i) => i.kind)).toEqual(["page-moves", "ipi-counts"]);
  });

  it("applies the knob and the trace switch to the machine, also those set before it existed", () => {
    const listeners: ((e: ViewEvent) => void)[] = [];
    const view = { on: (l: (e: ViewEvent) => void) => (listeners.push(l), () => {}) };
    const calls: string[] = [];
    const machine = { setLinkDelay: (ms: number) => void calls.push(`delay ${ms}`), setTracing: (on: boolean) => void calls.push(`trace ${on}`) };
    let current: typeof machine | null = null;
    const c = connectControls(view, () => current);
    listeners.forEach((l) => l({ kind: "set-link-delay", ms: 20 }));
    expect(calls).toEqual([]);
    current = machine;
    c.apply(machine);
    expect(calls).toEqual(["delay 20", "trace false"]);
    listeners.forEach((l) => l({ kind: "trace", recording: true }));
    expect(calls.slice(2)).toEqual(["delay 20", "trace true"]);
  });
});
