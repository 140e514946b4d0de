// A tab's VM links as its net worker runs them (issue 15), with fake channels: frames wait in their
// rings until both ends said how the pair carries them; then they go direct (chunked on the
// channel) or through the relay, never both; a full channel holds them; a frame claiming a node
// its tab does not run, or for a node no tab runs, is refused by name.

import { describe, expect, it } from "vitest";
import { nodePlan, planTab } from "../../../src/runtime/links/tab-bridge.ts";
import { LocalLinks } from "../../../src/runtime/links/local-links.ts";
import { type VmPort, VmLinks } from "../../../src/runtime/links/vm-links.ts";
import { encodeVmFrame, encodeVmProbe, VmFrameReader } from "../../../src/protocol/tab/vm-channel.ts";

class FakePort implements VmPort {
  sent: Uint8Array[] = [];
  bufferedAmount = 0;
  open = true;
  send(m: Uint8Array) {
    this.sent.push(m.slice());
  }
}

/** Tab 0 runs node 0; tab 1 runs node 1, tab 2 node 2 (three nodes, this tab is tab 0). */
function setup() {
  const plan = planTab(3, [0], 1 << 16);
  const relayed: [number, number, number[]][] = [];
  const links = new VmLinks(plan, { relay: (from, to, f) => relayed.push([from, to, [...f]]), highWaterBytes: 1000 });
  links.setRoutes([0, 1, 2]);
  const node0 = new LocalLinks(nodePlan(plan, 0));
  return { plan, links, node0, relayed };
}

const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("VmLinks", () => {
  it("holds a tab's frames until both ends spoke, then sends them direct, in order, chunked to the channel's limit", () => {
    const { links, node0 } = setup();
    const port = new FakePort();
    links.addChannel(1, port, 100);
    node0.send(1, frame(10, 1));
    node0.send(1, frame(250, 2));
    expect(links.pump()).toBe(0); // tab 1 has not said yet
    expect(links.pathTo(1)).toBeNull();
    links.theirPath(1, "direct");
    expect(links.pathTo(1)).toBe("direct");
    expect(links.pump()).toBe(2);
    const reader = new VmFrameReader(1 << 16);
    const got = port.sent.map((m) => reader.read(m)).filter((x) => x !== null);
    expect(got.map((g) => (g.kind === "frame" ? [g.from, g.to, g.frame.length, g.frame[0]] : g))).toEqual([[0, 1, 10, 1], [0, 1, 250, 2]]);
    expect(port.sent.every((m) => m.length <= 100)).toBe(true);
    expect(links.counters).toMatchObject({ framesOut: 2, directOut: 2 });
    expect(links.states()).toEqual([{ tab: 1, path: "direct" }]);
  });

  it("relays when either end has no channel, and says why", () => {
    const { links, node0, relayed } = setup();
    const port = new FakePort();
    links.addChannel(1, port, 100);
    links.theirPath(1, "relay", "this tab was asked to relay (?vmlink=relay)");
    links.relayTo(2, "its link to this tab has no second data channel");
    links.theirPath(2, "direct");
    node0.send(1, frame(5, 7));
    node0.send(2, frame(6, 8));
    expect(links.pump()).toBe(2);
    expect(port.sent).toEqual([]);
    expect(relayed).toEqual([[0, 1, [7, 7, 7, 7, 7]], [0, 2, [8, 8, 8, 8, 8, 8]]]);
    expect(links.states()).toEqual([
      { tab: 1, path: "relay", why: "tab 1: this tab was asked to relay (?vmlink=relay)" },
      { tab: 2, path: "relay", why: "its link to this tab has no second data channel" },
    ]);
    expect(() => links.theirPath(2, "relay")).toThrow(/said it carries frames direct, then relay/);
  });

  it("holds frames until the channel opens and while it buffers more than its high water, and sends them then", () => {
    const { links, node0 } = setup();
    const port = new FakePort();
    port.open = false;
    links.addChannel(1, port, 4096);
    links.theirPath(1, "direct");
    node0.send(1, frame(10, 1));
    expect(links.pump()).toBe(0);
    expect(links.ping(1, 1)).toBe(false);
    port.open = true;
    expect(links.pump()).toBe(1);
    port.bufferedAmount = 5000;
    node0.send(1, frame(10, 1));
    expect(links.pump()).toBe(0);
    port.bufferedAmount = 0;
    expect(links.pump()).toBe(1);
  });

  it("delivers direct frames to the local node, and refuses one claiming a node its tab does not run", () => {
    const { links, node0 } = setup();
    links.addChannel(1, new FakePort(), 4096);
    links.theirPath(1, "direct");
    for (const c of encodeVmFrame(1, 0, frame(3000, 9), 1000)) links.fromChannel(1, c);
    const d = node0.receive();
    expect(d && [d.from, d.frame.length]).toEqual([1, 3000]);
    expect(links.counters).toMatchObject({ framesIn: 1, directIn: 1, bytesIn: 3000 });
    expect(() => links.fromChannel(1, encodeVmFrame(2, 0, frame(1, 0), 100)[0]!)).toThrow(/tab 1 sent a frame claiming node 2, which it does not run/);
    expect(() => links.fromChannel(2, encodeVmFrame(2, 0, frame(1, 0), 100)[0]!)).toThrow(/tab 2 sent on a VM channel this tab does not have/);
  });

  it("answers a ping on the channel at once with a pong of its id, and hands a pong to onPong", () => {
    const plan = planTab(2, [0], 1 << 16);
    const pongs: [number, number][] = [];
    const links = new VmLinks(plan, { relay: () => {}, onPong: (tab, id) => pongs.push([tab, id]) });
    links.setRoutes([0, 1]);
    const port = new FakePort();
    expect(links.ping(1, 7)).toBe(false); // no channel yet
    links.addChannel(1, port, 100);
    links.theirPath(1, "direct");
    expect(links.ping(1, 7)).toBe(true);
    expect(new VmFrameReader(100).read(port.sent[0]!)).toEqual({ kind: "ping", id: 7 });
    links.fromChannel(1, encodeVmProbe("ping", 0xfffffffe));
    expect(new VmFrameReader(100).read(port.sent[1]!)).toEqual({ kind: "pong", id: 0xfffffffe });
    links.fromChannel(1, encodeVmProbe("pong", 7));
    expect(pongs).toEqual([[1, 7]]);
    // A ping that arrives before this end opened is answered when it opens.
    port.open = false;
    links.fromChannel(1, encodeVmProbe("ping", 9));
    expect(port.sent.length).toBe(2);
    port.open = true;
    links.pump();
    expect(new VmFrameReader(100).read(port.sent[2]!)).toEqual({ kind: "pong", id: 9 });
    expect(links.counters.framesIn).toBe(0);
  });

  it("refuses a frame for a node no tab runs, and forgets a tab that left", () => {
    const { links, node0 } = setup();
    links.setRoutes([0, 1, null]);
    node0.send(2, frame(4, 1));
    expect(() => links.pump()).toThrow(/node 0 sent a frame to node 2, which no tab runs/);
    links.addChannel(1, new FakePort(), 100);
    links.theirPath(1, "direct");
    links.dropTab(1);
    expect(links.pathTo(1)).toBeNull();
    expect(() => links.addChannel(1, new FakePort(), 100)).not.toThrow();
  });

  it("reads a remote node's own channel: its frames only, into the local node's ring; publishes each pair's path as it settles", () => {
    const plan = planTab(3, [0], 1 << 16);
    const paths: [number, string | null][] = [];
    const links = new VmLinks(plan, { relay: () => {}, onPath: (tab, path) => paths.push([tab, path]) });
    links.setRoutes([0, 1, 2]);
    const node0 = new LocalLinks(nodePlan(plan, 0));
    links.addNodeChannel(1, 1);
    expect(() => links.addNodeChannel(1, 1)).toThrow(/node 1's channel from tab 1 is already here/);
    links.addChannel(1, new FakePort(), 4096);
    links.theirPath(1, "direct");
    links.relayTo(2, "no second data channel");
    links.theirPath(2, "direct");
    expect(paths).toEqual([[1, null], [1, "direct"], [2, null], [2, "relay"]]);
    // A frame in chunks on node 1's channel, next to one on the pair's channel: both reach node 0.
    for (const c of encodeVmFrame(1, 0, frame(2500, 4), 1000)) links.fromNodeChannel(1, 1, c);
    links.fromChannel(1, encodeVmFrame(1, 0, frame(5, 5), 1000)[0]!);
    const got = [node0.receive(), node0.receive()].map((d) => d && [d.from, d.frame.length, d.frame[0]]);
    expect(got).toEqual([[1, 2500, 4], [1, 5, 5]]);
    expect(links.counters).toMatchObject({ framesIn: 2, directIn: 2 });
    expect(() => links.fromNodeChannel(1, 1, encodeVmFrame(2, 0, frame(1, 0), 100)[0]!)).toThrow(/node 1's channel from tab 1 carried a frame claiming node 2/);
    expect(() => links.fromNodeChannel(1, 1, encodeVmProbe("ping", 3))).toThrow(/carried a ping; only its frames go there/);
    expect(() => links.fromNodeChannel(1, 2, encodeVmFrame(2, 0, frame(1, 0), 100)[0]!)).toThrow(/node 2 of tab 1 sent on a channel this tab does not have/);
    // A node the roster moved away from that tab is refused on its old channel.
    links.setRoutes([0, 2, 2]);
    expect(() => links.fromNodeChannel(1, 1, encodeVmFrame(1, 0, frame(1, 0), 100)[0]!)).toThrow(/tab 1 sent a frame claiming node 1, which it does not run/);
    links.dropTab(1);
    expect(paths.at(-1)).toEqual([1, null]);
  });
});
