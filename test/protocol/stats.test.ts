import { describe, expect, it } from "vitest";
import { decode, encode } from "../../src/protocol/codec.ts";
import { DsmNode } from "../../src/protocol/dsm/node.ts";
import { buildSnapshot, PageStateMirror } from "../../src/protocol/stats.ts";
import { PAGE_SIZE } from "../../src/protocol/types.ts";

describe("statistics snapshots", () => {
  it("merge DSM counters with the others and carry page changes once", () => {
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 64 });
    // node 1 takes pages 10..12 for writing (node 0 serves; managers are 0 and 1 alternately)
    for (const page of [10, 11, 12]) {
      const msg = page % 2 === 0 ? { type: "dsm-request" as const, page, access: "write" as const, have: 0 } : {
        type: "dsm-forward" as const, page, access: "write" as const, requester: 1, have: 0,
      };
      n0.onMessage(1, msg);
      n0.revoked(page, new Uint8Array(PAGE_SIZE));
      if (page % 2 === 0) n0.onMessage(1, { type: "dsm-confirm", page, access: "write" });
    }
    const snap = buildSnapshot({
      node: 0,
      seq: 1,
      atMs: 1234.5,
      dsm: n0,
      counters: { ipisSent: 7, forwardsServed: 999 },
      vcpus: [{ vcpu: 0, state: "running", instructions: 5_000_000_000 }],
      links: [{ peer: 1, rttUs: 950 }],
    });
    expect(snap.counters.ipisSent).toBe(7);
    expect(snap.counters.forwardsServed).toBe(3); // the DSM's own count wins
    expect(snap.counters.pagesSentZero).toBe(3);
    expect(snap.pages).toEqual([{ first: 10, count: 3, state: "invalid" }]);
    const frame = encode(snap);
    expect(frame.length).toBeLessThan(64); // compact: 3 pages changed, one run
    const back = decode(frame);
    expect(back).toEqual(snap);

    const mirror = new PageStateMirror(0, 64);
    mirror.apply(snap.pages);
    expect([9, 10, 11, 12, 13].map((p) => mirror.state(p))).toEqual(["modified", "invalid", "invalid", "invalid", "modified"]);
    expect(buildSnapshot({ node: 0, seq: 2, atMs: 0, dsm: n0 }).pages).toEqual([]);
    expect(() => mirror.apply([{ first: 60, count: 5, state: "shared" }])).toThrow(/goes past guest RAM/);
  });
});
