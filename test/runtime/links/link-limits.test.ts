// Issue 13: every queue a peer can grow is bounded. A frame waits in a link's backlog only while the
// ring it must enter is full; a peer that floods (the bridge: frames from another tab) or stops
// reading (a node's own sends) must not grow that backlog without end, and a frame no ring can hold
// is refused where it enters, not thrown later inside the tab's frame pump.

import { describe, expect, it } from "vitest";
import { nodePlan, planTab, TabBridge } from "../../../src/runtime/links/tab-bridge.ts";
import {
  defaultBacklogLimits,
  DSM_BYTES_IN_FLIGHT,
  DSM_FRAMES_IN_FLIGHT,
  FrameTooLargeError,
  LinkClosedError,
  LocalLinks,
  planLocalLinks,
  QueueOverflowError,
} from "../../../src/runtime/links/local-links.ts";
import { RingReader, RingWriter } from "../../../src/runtime/links/sab-ring.ts";

const frame = (n: number, fill = 0) => new Uint8Array(n).fill(fill);

/** Calls `f` until it throws (at most `max` times); returns how many calls succeeded and the error. */
function untilThrow(f: (i: number) => void, max = 1_000_000): { ok: number; error: unknown } {
  for (let i = 0; i < max; i++) {
    try {
      f(i);
    } catch (error) {
      return { ok: i, error };
    }
  }
  return { ok: max, error: null };
}

describe("the tab bridge (frames from other tabs)", () => {
  it("refuses a frame longer than the ring can hold at delivery, with a named error, also behind a backlog; the pump keeps running", () => {
    const tab = planTab(2, [0], 4096);
    const bridge = new TabBridge(tab, () => {});
    // With the ring empty.
    const first = untilThrow(() => bridge.deliver(1, 0, frame(5000)));
    expect(first.error).toBeInstanceOf(FrameTooLargeError);
    expect(first.error).toMatchObject({ name: "FrameTooLargeError", from: 1, to: 0, bytes: 5000, maxFrame: 4092 });
    expect((first.error as Error).message).toMatch(/5000 bytes from node 1 to node 0 .* 4092 bytes/);
    // With the ring full and frames waiting behind it: the old bridge queued the frame here and
    // threw a RingError from inside pump(), which killed the tab's frame pump.
    for (let i = 0; i < 10; i++) bridge.deliver(1, 0, frame(1000, i));
    expect(bridge.backlogOf(1, 0).frames).toBeGreaterThan(0);
    expect(() => bridge.deliver(1, 0, frame(4093))).toThrow(FrameTooLargeError);
    expect(() => bridge.pump()).not.toThrow();
    // Every accepted frame still arrives, in order, as node 0 reads.
    const reader = new RingReader(tab.rings[1]![0]!);
    const got: number[] = [];
    for (let round = 0; round < 20 && got.length < 10; round++) {
      for (let f = reader.read(); f; f = reader.read()) got.push(f[0]!);
      bridge.pump();
    }
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("a peer that floods one link past the backlog's bound gets QueueOverflowError; the link closes, the others keep working", () => {
    const tab = planTab(3, [0], 4096, { frames: 100 });
    const sent: string[] = [];
    const bridge = new TabBridge(tab, (from, to, f) => void sent.push(`${from}>${to}:${f[0]}`));
    // Node 1 floods node 0, which is not reading.
    const flood = untilThrow((i) => bridge.deliver(1, 0, frame(16, i & 0xff)));
    expect(flood.error).toBeInstanceOf(QueueOverflowError);
    const err = flood.error as QueueOverflowError;
    expect({ name: err.name, queue: err.queue, from: err.from, to: err.to, limit: err.limit, unit: err.unit }).toEqual({
      name: "QueueOverflowError",
      queue: "bridge-backlog",
      from: 1,
      to: 0,
      limit: 100,
      unit: "frames",
    });
    expect(err.message).toMatch(/tab bridge's backlog of frames from node 1 for node 0 .* limit of 100 frames; the link is closed/);
    // The ring took what it could (4096 / 20 bytes a frame), then exactly 100 waited.
    expect(flood.ok).toBe(Math.floor(4096 / 20) + 100);
    // Closed: its backlog is dropped, later frames are refused, and pump/flush do not throw.
    expect(bridge.backlogOf(1, 0)).toEqual({ frames: 0, bytes: 0 });
    expect(() => bridge.deliver(1, 0, frame(1))).toThrow(LinkClosedError);
    expect(() => bridge.pump()).not.toThrow();
    // The other links work on: node 2's frames reach node 0, node 0's frames leave for node 1.
    bridge.deliver(2, 0, Uint8Array.of(42));
    expect(new RingReader(tab.rings[2]![0]!).read()).toEqual(Uint8Array.of(42));
    new RingWriter(tab.rings[0]![1]!).tryWrite(Uint8Array.of(7));
    bridge.pump();
    expect(sent).toEqual(["0>1:7"]);
  });

  it("bounds the backlog's bytes by default: four rings' worth, at least four times the DSM's bytes in flight", () => {
    const tab = planTab(2, [0], 1 << 16);
    const limits = defaultBacklogLimits(1 << 16);
    expect(limits).toEqual({ frames: (1 << 16) / 8, bytes: 4 << 16 });
    const bridge = new TabBridge(tab, () => {});
    const flood = untilThrow(() => bridge.deliver(1, 0, frame(1020)));
    expect(flood.error).toBeInstanceOf(QueueOverflowError);
    expect(flood.error).toMatchObject({ queue: "bridge-backlog", limit: 4 << 16, unit: "bytes" });
    // The ring held 64 frames of 1024 bytes; the backlog as many as fit 256 KiB.
    expect(flood.ok).toBe(64 + Math.floor((4 << 16) / 1020));
  });

  it("the defaults are well above what a well-behaved peer has in flight, even behind a full ring", () => {
    expect(defaultBacklogLimits(1 << 20)).toEqual({ frames: 131072, bytes: 4 << 20 });
    // The smallest ring a page fits (8 KiB): its defaults are the floors, set by the DSM's in-flight bound.
    const tab = planTab(2, [0], 8192);
    expect(defaultBacklogLimits(8192)).toEqual({ frames: 8 * DSM_FRAMES_IN_FLIGHT, bytes: 4 * DSM_BYTES_IN_FLIGHT });
    const bridge = new TabBridge(tab, () => {});
    for (let i = 0; i < 8192 / 16 + 1; i++) bridge.deliver(1, 0, frame(12)); // the ring is full, one frame waits
    expect(bridge.backlogOf(1, 0).frames).toBeGreaterThan(0);
    // Every DSM frame a peer can have sent unanswered, one of them a page: accepted.
    bridge.deliver(1, 0, frame(4106));
    for (let i = 1; i < DSM_FRAMES_IN_FLIGHT; i++) bridge.deliver(1, 0, frame(32));
    expect(bridge.backlogOf(1, 0).frames).toBe(1 + DSM_FRAMES_IN_FLIGHT);
  });

  it("passes the plan's backlog bound to the tab's nodes", () => {
    const tab = planTab(2, [0], 4096, { frames: 3 });
    const links = new LocalLinks(nodePlan(tab, 0));
    const flood = untilThrow(() => links.send(1, frame(1000)));
    expect(flood.error).toMatchObject({ name: "QueueOverflowError", queue: "link-backlog", from: 0, to: 1, limit: 3, unit: "frames" });
    expect(() => planTab(2, [0], 4096, { bytes: 0 })).toThrow(/backlog limit bytes must be a positive integer/);
  });
});

describe("a node's links (its own sends)", () => {
  it("a peer that stops reading makes the sender's backlog overflow with QueueOverflowError, not grow without end", () => {
    const plan = planLocalLinks(3, 4096, { bytes: 10_000 });
    const links = new LocalLinks({ ...plan, self: 0 });
    // Node 1 never reads (a hung or hostile peer that keeps asking: each frame here could be a pong
    // or an io-reply it asked for).
    const flood = untilThrow(() => links.send(1, frame(100)));
    expect(flood.error).toBeInstanceOf(QueueOverflowError);
    expect(flood.error).toMatchObject({ queue: "link-backlog", from: 0, to: 1, limit: 10_000, unit: "bytes" });
    expect((flood.error as Error).message).toMatch(/node 0's backlog of frames for node 1 \(node 1 is not reading its ring\) .* 10000 bytes; the link is closed/);
    expect(flood.ok).toBe(Math.floor(4096 / 104) + 100);
    expect(() => links.send(1, frame(1))).toThrow(LinkClosedError);
    expect(links.flush()).toBe(true);
    // The link to node 2 is untouched.
    links.send(2, Uint8Array.of(9));
    const node2 = new LocalLinks({ ...plan, self: 2 });
    expect(node2.receive()).toEqual({ from: 0, frame: Uint8Array.of(9) });
  });

  it("refuses a frame its ring can never hold when it is sent, also behind a backlog (flush used to throw it later)", () => {
    const plan = planLocalLinks(2, 4096);
    const links = new LocalLinks({ ...plan, self: 0 });
    for (let i = 0; i < 6; i++) links.send(1, frame(1000));
    expect(links.backlogOf(1).frames).toBeGreaterThan(0);
    expect(() => links.send(1, frame(5000))).toThrow(FrameTooLargeError);
    expect(() => links.flush()).not.toThrow();
  });
});
