// A node's own send channels (issue 15), with fake channels: per tab, the way is chosen at the
// node's first frame for it and kept for life (its channel only once the pair is direct and the
// channel open; else the ring to the net worker), so a node's frames to a tab never take two ways.

import { describe, expect, it } from "vitest";
import { NodeChannelError, type NodeChannelPort, NodeChannels, PATH_CELL, readPathCell, writePathCell } from "../../../src/runtime/links/node-channels.ts";
import type { VmPath } from "../../../src/runtime/links/vm-links.ts";
import { VmFrameReader } from "../../../src/protocol/tab/vm-channel.ts";

class FakePort implements NodeChannelPort {
  sent: Uint8Array[] = [];
  bufferedAmount = 0;
  open = true;
  closed = false;
  refuse: string | null = null;
  send(m: Uint8Array) {
    if (this.refuse) throw new Error(this.refuse);
    this.sent.push(m.slice());
  }
}

const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

/** Node 0 on tab 0; nodes 1 and 2 on tab 1, node 3 on tab 2 (which has no channel from node 0). */
function setup(paths: Record<number, VmPath | null> = { 1: "direct", 2: "direct" }) {
  const port = new FakePort();
  const ring: [number, number][] = [];
  const sent = new Float64Array(2);
  const nc = new NodeChannels({
    self: 0,
    hostOf: [0, 1, 1, 2],
    channels: new Map([[1, { port, maxMessage: 100 }]]),
    pathTo: (tab) => paths[tab] ?? null,
    ring: (to, f) => ring.push([to, f.length]),
    sent,
  });
  return { nc, port, ring, sent, paths };
}

const frames = (port: FakePort) => {
  const r = new VmFrameReader(1 << 16);
  return port.sent.map((m) => r.read(m)).filter((x) => x !== null).map((g) => (g.kind === "frame" ? [g.from, g.to, g.frame.length, g.frame[0]] : g));
};

describe("NodeChannels", () => {
  it("sends a direct tab's frames on the node's channel, in order and chunked, and counts them; other tabs' go by the ring", () => {
    const { nc, port, ring, sent } = setup();
    nc.send(1, frame(10, 1));
    nc.send(2, frame(250, 2));
    nc.send(3, frame(7, 3)); // tab 2: no channel from this node
    nc.send(0, frame(4, 4)); // its own tab
    expect(frames(port)).toEqual([[0, 1, 10, 1], [0, 2, 250, 2]]);
    expect(port.sent.every((m) => m.length <= 100)).toBe(true);
    expect(ring).toEqual([[3, 7], [0, 4]]);
    expect([...sent]).toEqual([2, 260]);
    expect(nc.choices()).toEqual([{ tab: 0, way: "ring" }, { tab: 1, way: "channel" }, { tab: 2, way: "ring" }]);
  });

  it("keeps the ring for life for a tab whose pair was not settled direct, or whose channel was not open, at the first frame", () => {
    for (const late of ["path", "open"] as const) {
      const { nc, port, ring, paths } = setup({ 1: late === "path" ? null : "direct" });
      if (late === "open") port.open = false;
      nc.send(1, frame(5, 1));
      paths[1] = "direct";
      port.open = true;
      nc.send(2, frame(6, 2));
      expect(ring).toEqual([[1, 5], [2, 6]]);
      expect(port.sent).toEqual([]);
    }
    const relay = setup({ 1: "relay" });
    relay.nc.send(1, frame(3, 1));
    expect(relay.ring).toEqual([[1, 3]]);
  });

  it("drops frames for a channel that closed (the VM stops for why it closed), and names node and tab when a send is refused", () => {
    const { nc, port, sent } = setup();
    nc.send(1, frame(5, 1));
    port.closed = true;
    port.open = false;
    nc.send(1, frame(5, 2));
    expect(nc.dropped).toBe(1);
    expect([...sent]).toEqual([1, 5]);
    const b = setup();
    b.nc.send(1, frame(1, 1));
    b.port.refuse = "RTCDataChannel send queue is full";
    b.port.bufferedAmount = 16 << 20;
    expect(() => b.nc.send(2, frame(1, 1))).toThrow(NodeChannelError);
    expect(() => b.nc.send(2, frame(1, 1))).toThrow(/node 0's channel to tab 1 refused a frame for node 2 \(RTCDataChannel send queue is full; 16777216 bytes waited in it\)/);
  });

  it("path cells: what the net worker writes, a node reads", () => {
    const cells = new Int32Array(new SharedArrayBuffer(16));
    expect(readPathCell(cells, 1)).toBeNull();
    writePathCell(cells, 1, "direct");
    writePathCell(cells, 2, "relay");
    expect([readPathCell(cells, 1), readPathCell(cells, 2), readPathCell(cells, 3), readPathCell(cells, 9)]).toEqual(["direct", "relay", null, null]);
    expect(cells[1]).toBe(PATH_CELL.direct);
    writePathCell(cells, 1, null);
    expect(readPathCell(cells, 1)).toBeNull();
  });
});
