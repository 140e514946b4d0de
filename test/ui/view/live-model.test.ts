import { describe, expect, it } from "vitest";
import type { ClusterConfig, StatsSnapshot } from "../../../src/protocol/messages.ts";
import { SymbolTable } from "../../../src/guests/symbols/system-map.ts";
import { LiveModel } from "../../../src/ui/view/model/live-model.ts";
import { snap } from "./support.ts";

const config: ClusterConfig = { type: "config", nodes: 2, memoryPages: 64, vcpuHome: [0, 1], readTakesOwnership: true, guest: "test" };

describe("live model", () => {
  it("turns a stream of inputs into plots, page map, hot pages and IPI counts", () => {
    const m = new LiveModel({ hotWindowMs: 5000 });
    expect(m.ingest({ kind: "config", config })).toBe(true);
    m.ingest({ kind: "stats", snapshot: snap(0, 1, 0, {}, { rttUs: { 1: 1000 } }), receivedMs: 0 });
    m.ingest({ kind: "stats", snapshot: snap(1, 1, 0), receivedMs: 0 });
    m.tick(0);
    // node 1 takes page 10 (write), twice back and forth with node 0 over the next second
    m.ingest({ kind: "stats", snapshot: snap(1, 2, 500, { writeFaults: 5 }, { pages: [{ first: 10, count: 1, state: "modified" }] }), receivedMs: 500 });
    m.ingest({ kind: "stats", snapshot: snap(0, 2, 500, { pagesSentBytes: 5 }, { pages: [{ first: 10, count: 1, state: "invalid" }], rttUs: { 1: 3000 } }), receivedMs: 500 });
    m.ingest({ kind: "stats", snapshot: snap(0, 3, 1000, { pagesSentBytes: 5, writeFaults: 2 }, { pages: [{ first: 10, count: 1, state: "modified" }] }), receivedMs: 1000 });
    m.ingest({ kind: "stats", snapshot: snap(1, 3, 1000, { writeFaults: 5, pagesSentBytes: 2 }, { pages: [{ first: 10, count: 1, state: "invalid" }] }), receivedMs: 1000 });
    m.ingest({ kind: "ipi-counts", node: 0, counts: [{ src: 0, dest: 1, kind: "fixed", count: 9 }] });
    m.tick(1000);
    expect(m.pageMap!.ownerOf(10)).toBe(0);
    expect(m.hot.top(1, 1000)).toEqual([{ page: 10, moves: 2, arrivals: new Map([[1, 1], [0, 1]]) }]);
    expect(m.ipis.count(0, 1)).toBe(9);
    const [t, readFaults, writeFaults, pagesMoved] = m.series.data();
    expect(t).toEqual([0, 1]);
    expect(readFaults).toEqual([0, 0]);
    expect(writeFaults).toEqual([0, 4 + 0]); // node 0: 2 faults in 500 ms = 4/s; node 1: none in its last interval
    expect(pagesMoved).toEqual([0, 4]); // node 1 sent 2 pages in 500 ms; node 0 sent none in its last
    expect(m.rtt.data()).toEqual([[0, 1], [1, 3]]);
  });

  it("counts hot pages exactly from page-moves reports once a node sends them", () => {
    const m = new LiveModel();
    m.ingest({ kind: "config", config });
    // a delta shows page 3 arriving at node 1: counted while no report exists
    m.ingest({ kind: "stats", snapshot: snap(1, 1, 0, {}, { pages: [{ first: 3, count: 1, state: "shared" }] }), receivedMs: 100 });
    expect(m.hot.movesOf(3)).toBe(1);
    // node 0 reports it sent page 3 seven times (the page bounced within one snapshot period)
    expect(m.ingest({ kind: "page-moves", node: 0, seq: 1, receivedMs: 200, moves: [{ page: 3, to: 1, count: 7 }] })).toBe(true);
    expect(m.hotSource).toBe("reports");
    expect(m.hot.movesOf(3)).toBe(8);
    m.ingest({ kind: "page-moves", node: 0, seq: 1, receivedMs: 250, moves: [{ page: 3, to: 1, count: 7 }] }); // duplicate
    m.ingest({ kind: "stats", snapshot: snap(1, 2, 250, {}, { pages: [{ first: 4, count: 1, state: "shared" }] }), receivedMs: 300 });
    expect(m.hot.movesOf(3)).toBe(8);
    expect(m.hot.movesOf(4)).toBe(0); // deltas no longer count once reports flow
    expect(m.ingest({ kind: "page-moves", node: 0, seq: 2, receivedMs: 0, moves: [{ page: 3, to: 1, count: 0 }] })).toBe(false);
  });

  it("rejects bad inputs with a message naming the problem, and keeps going", () => {
    const m = new LiveModel();
    m.ingest({ kind: "config", config });
    const bad = { ...snap(0, 1, 0), counters: { ...snap(0, 1, 0).counters, readFaults: -1 } } as StatsSnapshot;
    expect(m.ingest({ kind: "stats", snapshot: bad, receivedMs: 0 })).toBe(false);
    expect(m.health.lastError).toMatch(/counter readFaults is -1/);
    expect(m.ingest({ kind: "stats", snapshot: snap(5, 1, 0), receivedMs: 0 })).toBe(false);
    expect(m.health.lastError).toMatch(/node 5, but the cluster has 2 nodes/);
    expect(m.ingest({ kind: "stats", snapshot: snap(1, 1, 0, {}, { pages: [{ first: 60, count: 9, state: "shared" }] }), receivedMs: 0 })).toBe(false);
    expect(m.health.lastError).toMatch(/past guest RAM/);
    expect(m.ingest({ kind: "stats", snapshot: snap(1, 1, 0, {}, { pages: [{ first: 6, count: 2, state: "shared" }, { first: 7, count: 1, state: "invalid" }] }), receivedMs: 0 })).toBe(false);
    expect(m.health.lastError).toMatch(/overlap/);
    expect(m.ingest({ kind: "nonsense" } as never)).toBe(false);
    expect(m.health.lastError).toMatch(/unknown view input kind "nonsense"/);
    expect(m.ingest({ kind: "config", config: { ...config, vcpuHome: [0, 2] } })).toBe(false);
    expect(m.health.lastError).toMatch(/vcpuHome/);
    expect(m.health.rejected).toBe(6);
    expect(m.ingest({ kind: "stats", snapshot: snap(1, 1, 0), receivedMs: 0 })).toBe(true);
  });

  it("counts page runs that arrive before the config instead of guessing the guest size", () => {
    const m = new LiveModel();
    m.ingest({ kind: "stats", snapshot: snap(1, 1, 0, {}, { pages: [{ first: 0, count: 3, state: "modified" }] }), receivedMs: 0 });
    expect(m.health.pageRunsBeforeConfig).toBe(1);
    expect(m.pageMap).toBeNull();
  });

  it("describes kernel pages with their symbols", () => {
    const m = new LiveModel();
    m.symbols = SymbolTable.fromSystemMap("c1000000 T _text\nc1005000 D jiffies\nc1005008 D jiffies_64\nc1006000 B _end\n");
    expect(m.describePage(0x1005)).toBe("jiffies, jiffies_64");
    expect(m.describePage(0x1005, 1)).toBe("jiffies +1 more");
    expect(m.describePage(0x2000)).toBeUndefined();
    // section starts (extracted maps carry them) only speak where nothing else is known
    m.symbols = SymbolTable.fromSystemMap("c1000000 T _text\nc1c39000 d section:.data\nc1c3dd40 D jiffies\nc1d00000 B _end\n");
    expect(m.describePage(0x1c3d)).toBe("jiffies");
    expect(m.describePage(0x1c3a)).toBe("in .data");
  });
});
