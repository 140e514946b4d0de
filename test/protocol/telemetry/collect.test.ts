import { describe, expect, it } from "vitest";
import { IpiCountCollector, PageMoveCollector } from "../../../src/protocol/telemetry/collect.ts";
import { LiveModel } from "../../../src/ui/view/model/live-model.ts";
import { encode } from "../../../src/protocol/codec.ts";
import { statsInput } from "../../../src/ui/view/frames.ts";
import { snap } from "../../ui/view/support.ts";

describe("node-side collectors for the view's optional reports", () => {
  it("IPI counts are cumulative and feed the matrix", () => {
    const c = new IpiCountCollector();
    c.count(0, 1, "fixed");
    c.count(0, 1, "fixed");
    c.count(0, 2, "startup");
    const m = new LiveModel();
    expect(m.ingest(c.report(0))).toBe(true);
    c.count(0, 1, "fixed");
    m.ingest(c.report(0));
    m.ingest(c.report(0)); // repeated: no double count
    expect(m.ipis.count(0, 1, "fixed")).toBe(3);
    expect(m.ipis.count(0, 2)).toBe(1);
  });

  it("page moves are per period, most-moved first, bounded", () => {
    const c = new PageMoveCollector(2);
    for (let i = 0; i < 5; i++) c.sent(0x1c3d, 1);
    c.sent(0x1c3d, 2);
    c.sent(7, 1);
    c.sent(7, 1);
    c.sent(9, 1);
    const r = c.take(0, 100);
    expect(r).toEqual({ kind: "page-moves", node: 0, seq: 1, receivedMs: 100, moves: [{ page: 0x1c3d, to: 1, count: 5 }, { page: 7, to: 1, count: 2 }] });
    expect(c.take(0, 200)).toEqual({ kind: "page-moves", node: 0, seq: 2, receivedMs: 200, moves: [] });
  });
});

describe("stats frames to view inputs", () => {
  it("decodes a node's stats frame and refuses other messages", () => {
    const s = snap(1, 4, 250, { readFaults: 3 }, { pages: [{ first: 2, count: 3, state: "modified" }] });
    expect(statsInput(encode(s), 99)).toEqual({ kind: "stats", snapshot: s, receivedMs: 99 });
    expect(() => statsInput(encode({ type: "ping", seq: 1, atMs: 0 }), 0)).toThrow(/expected a stats frame, got a ping/);
  });
});
