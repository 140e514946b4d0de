import { describe, expect, it } from "vitest";
import { decode, encode } from "../../../src/protocol/codec.ts";
import { DemoCluster } from "../../../src/ui/labs/view/demo-cluster.ts";
import { HotPages } from "../../../src/ui/view/model/hot-pages.ts";
import { PageMapModel, type PageArrival } from "../../../src/ui/view/model/page-map.ts";

describe("page map from page-state deltas", () => {
  it("follows ownership and copies as real DsmNodes report them (through the codec)", () => {
    const cluster = new DemoCluster(3, 64);
    const map = new PageMapModel(3, 64);
    const arrivals: PageArrival[] = [];
    const deliver = (t: number) => {
      for (let n = 0; n < 3; n++) {
        const s = decode(encode(cluster.snapshot(n, t)));
        if (s.type !== "stats") throw new Error("not stats");
        map.apply(n, s.pages, (a) => arrivals.push(a));
      }
    };
    // node 1 writes pages 8..11 (a buffer), node 2 reads page 9, node 2 writes page 40
    for (const p of [8, 9, 10, 11]) cluster.access(1, 1, p, "write", 1);
    cluster.access(2, 2, 9, "read", 2);
    cluster.access(2, 2, 40, "write", 3);
    deliver(10);
    expect([7, 8, 10, 11, 12, 40].map((p) => map.ownerOf(p))).toEqual([0, 1, 1, 1, 0, 2]);
    // a read moves ownership to the reader (GiantVM's trick); node 1 keeps a shared copy
    expect(map.info(9)).toEqual({ page: 9, owner: 2, states: ["invalid", "shared", "shared-owner"], holders: [1, 2] });
    expect(map.holderCount(9)).toBe(2);
    expect(arrivals).toEqual([
      { page: 8, node: 1, write: true },
      { page: 9, node: 1, write: false }, // batched: by the snapshot it was only shared at node 1
      { page: 10, node: 1, write: true },
      { page: 11, node: 1, write: true },
      { page: 9, node: 2, write: false },
      { page: 40, node: 2, write: true },
    ]);
    expect(map.ownedCounts()).toEqual([59, 3, 2]);
    const gen = map.generation;
    deliver(20); // nothing changed: no runs, no new generation
    expect(map.generation).toBe(gen);
    // page 8 comes back to node 0
    cluster.access(0, 0, 8, "write", 30);
    deliver(40);
    expect(map.info(8).states).toEqual(["modified", "invalid", "invalid"]);
    expect(map.ownerOf(8)).toBe(0);
  });

  it("copes with deltas from old and new owner arriving in either order", () => {
    const map = new PageMapModel(2, 16);
    // new owner's claim first, then the old owner's release: owner stays the new one
    map.apply(1, [{ first: 3, count: 2, state: "modified" }]);
    expect(map.ownerOf(3)).toBe(1);
    map.apply(0, [{ first: 3, count: 2, state: "invalid" }]);
    expect(map.ownerOf(3)).toBe(1);
    // release first: unknown until the claim arrives
    map.apply(0, [{ first: 6, count: 1, state: "invalid" }]);
    expect(map.ownerOf(6)).toBeNull();
    map.apply(1, [{ first: 6, count: 1, state: "shared-owner" }]);
    expect(map.ownerOf(6)).toBe(1);
  });

  it("rejects runs outside guest RAM or from unknown nodes without changing anything", () => {
    const map = new PageMapModel(2, 16);
    expect(() => map.apply(1, [{ first: 2, count: 1, state: "modified" }, { first: 14, count: 5, state: "modified" }])).toThrow(/past guest RAM/);
    expect(() => map.apply(2, [{ first: 0, count: 1, state: "modified" }])).toThrow(/cluster has 2 nodes/);
    expect(map.ownerOf(14)).toBe(0);
    expect(() => map.ownerOf(16)).toThrow(RangeError);
  });
});

describe("hot pages", () => {
  it("ranks pages by moves in the window and forgets old ones", () => {
    const hot = new HotPages(1000);
    for (let i = 0; i < 6; i++) hot.record(0x1d85, i % 2, 100 + i); // bounces between nodes 0 and 1
    hot.record(7, 1, 150);
    const top = hot.top(2, 1050);
    expect(top.map((h) => [h.page, h.moves])).toEqual([[0x1d85, 6], [7, 1]]);
    expect([...top[0]!.arrivals]).toEqual([[0, 3], [1, 3]]);
    hot.record(7, 1, 1500);
    hot.record(9, 0, 1600);
    // at 1601 ms everything before 601 ms is gone
    expect(hot.top(5, 1601).map((h) => [h.page, h.moves])).toEqual([[7, 1], [9, 1]]);
    expect(hot.movesOf(0x1d85)).toBe(0);
  });

  it("stays within its bound and says how much it dropped", () => {
    const hot = new HotPages(60_000, 100);
    for (let i = 0; i < 250; i++) hot.record(i % 5, 0, i);
    expect(hot.events).toBe(100);
    expect(hot.dropped).toBe(150);
    expect(hot.top(5, 250).reduce((s, h) => s + h.moves, 0)).toBe(100);
  });
});
