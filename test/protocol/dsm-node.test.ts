// Directed scenarios for one DsmNode: the exact messages and effects of the common transactions,
// and the errors for misuse and protocol violations. (Random interleavings: dsm-sim.test.ts.)

import { describe, expect, it } from "vitest";
import { DsmProtocolError, DsmUsageError } from "../../src/protocol/dsm/effects.ts";
import type { DsmEffect } from "../../src/protocol/dsm/effects.ts";
import { DsmNode } from "../../src/protocol/dsm/node.ts";
import type { DsmMessage } from "../../src/protocol/messages.ts";
import { PAGE_SIZE } from "../../src/protocol/types.ts";

const sends = (effects: DsmEffect[]) => effects.filter((e) => e.type === "send");
const only = <T extends DsmEffect["type"]>(effects: DsmEffect[], type: T): Extract<DsmEffect, { type: T }> => {
  expect(effects.map((e) => e.type)).toEqual([type]);
  return effects[0] as Extract<DsmEffect, { type: T }>;
};
const message = (effects: DsmEffect[], to: number): DsmMessage => {
  const e = only(effects, "send");
  expect(e.to).toBe(to);
  return e.msg;
};

describe("DsmNode transactions", () => {
  it("read fault on a zero page: the bytes travel as 'zero' and ownership moves to the reader", () => {
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 4 });
    const n1 = new DsmNode({ self: 1, nodes: 2, pages: 4 });
    expect(n0.inspect(2)).toMatchObject({ access: "write", owner: true, version: 1, state: "modified" });
    expect(n1.inspect(2)).toMatchObject({ access: "none", owner: false, version: 0, state: "invalid" });

    // page 2's manager is node 0 (2 mod 2)
    const req = message(n1.onLocalFault(2, "read"), 0);
    expect(req).toEqual({ type: "dsm-request", page: 2, access: "read", have: 0 });
    // node 0 is manager and owner: it serves itself the forward, which needs node 0's engine to
    // stop writing and hand over the bytes
    const revoke = only(n0.onMessage(1, req), "revoke");
    expect(revoke).toEqual({ type: "revoke", page: 2, access: "read", wantBytes: true });
    const grant = message(n0.revoked(2, new Uint8Array(PAGE_SIZE)), 1);
    expect(grant).toEqual({
      type: "dsm-grant",
      page: 2,
      access: "read",
      owner: true,
      version: 1,
      copyset: [0],
      acks: 0,
      data: { form: "zero" },
    });
    expect(only(n1.onMessage(0, grant), "grant")).toEqual({ type: "grant", page: 2, access: "read", data: { form: "zero" } });
    // the manager waits for the confirm before serving anyone else
    expect(n0.inspect(2).manager).toEqual({ owner: 0, queued: 1 });
    const confirm = message(n1.accessDone(2), 0);
    expect(confirm).toEqual({ type: "dsm-confirm", page: 2, access: "read" });
    expect(n0.onMessage(1, confirm)).toEqual([]);
    expect(n0.inspect(2)).toMatchObject({ access: "read", owner: false, state: "shared", manager: { owner: 1, queued: 0 } });
    expect(n1.inspect(2)).toMatchObject({ access: "read", owner: true, copyset: [0], version: 1, state: "shared-owner" });
    expect(n0.counters.pagesSentZero).toBe(1);
    expect(n0.isQuiescent() && n1.isQuiescent()).toBe(true);

    // The write that follows costs one invalidation, no trip to the manager, and no bytes.
    const inv = message(n1.onLocalFault(2, "write"), 0);
    expect(inv).toEqual({ type: "dsm-invalidate", page: 2, version: 2, ackTo: 1 });
    expect(only(n0.onMessage(1, inv), "revoke")).toEqual({ type: "revoke", page: 2, access: "none", wantBytes: false });
    const ack = message(n0.revoked(2), 1);
    expect(ack).toEqual({ type: "dsm-invalidate-ack", page: 2, version: 2 });
    expect(only(n1.onMessage(0, ack), "grant")).toEqual({ type: "grant", page: 2, access: "write", data: { form: "current" } });
    expect(n1.inspect(2)).toMatchObject({ state: "modified", version: 2, copyset: [] });
    expect(n0.inspect(2)).toMatchObject({ state: "invalid", version: 1 });
  });

  it("hold window (holdGrants): a page that came to be written serves the next request only after holdOver", () => {
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 2 });
    const n1 = new DsmNode({ self: 1, nodes: 2, pages: 2, holdGrants: true });
    // node 1 write-faults page 1 (its manager is node 1): the forward goes to node 0, the owner
    const fwd = message(n1.onLocalFault(1, "write"), 0);
    only(n0.onMessage(1, fwd), "revoke");
    const grant = message(n0.revoked(1, new Uint8Array(PAGE_SIZE).fill(7)), 1);
    only(n1.onMessage(0, grant), "grant");
    // node 0 wants it back at once; its request queues at the manager (node 1) until the confirm
    const req = message(n0.onLocalFault(1, "read"), 1);
    expect(n1.onMessage(0, req)).toEqual([]);
    // the engine used the page: the confirm lets the manager forward node 0's request to node 1
    // itself, which now holds the page for its window instead of serving at once
    expect(n1.accessDone(1)).toEqual([{ type: "hold", page: 1 }]);
    expect(n1.inspect(1)).toMatchObject({ state: "modified", held: true, heldForward: true, busy: null });
    expect(n1.isQuiescent()).toBe(false);
    // the window ends: the request is served (node 1 stops writing and hands over the bytes)
    expect(n1.holdOver(1).map((e) => e.type)).toEqual(["revoke"]);
    expect(n1.inspect(1)).toMatchObject({ held: false, heldForward: false, busy: "serving" });
    expect(message(n1.revoked(1, new Uint8Array(PAGE_SIZE).fill(8)), 0)).toMatchObject({ type: "dsm-grant", page: 1, access: "read", owner: true });
    expect(() => n1.holdOver(1)).toThrow(DsmUsageError);
    // a window with no request waiting ends quietly; a node without holdGrants never opens one
    const n2 = new DsmNode({ self: 1, nodes: 2, pages: 2, holdGrants: true });
    const f2 = message(n2.onLocalFault(1, "write"), 0);
    const n3 = new DsmNode({ self: 0, nodes: 2, pages: 2 });
    only(n3.onMessage(1, f2), "revoke");
    only(n2.onMessage(0, message(n3.revoked(1, new Uint8Array(PAGE_SIZE)), 1)), "grant");
    expect(n2.accessDone(1)).toEqual([{ type: "hold", page: 1 }]);
    expect(n2.holdOver(1)).toEqual([]);
    expect(n2.isQuiescent()).toBe(true);
  });

  it("a forwarded request waits while the owner holds the page, then gets the new bytes", () => {
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 2, readTakesOwnership: false });
    const n1 = new DsmNode({ self: 1, nodes: 2, pages: 2, readTakesOwnership: false });
    // node 1 takes page 1 for writing; node 1 is its manager
    const fwd = message(n1.onLocalFault(1, "write"), 0);
    expect(fwd).toEqual({ type: "dsm-forward", page: 1, access: "write", requester: 1, have: 0 });
    const page = new Uint8Array(PAGE_SIZE);
    page[100] = 42;
    expect(only(n0.onMessage(1, fwd), "revoke")).toMatchObject({ access: "none", wantBytes: true });
    const grant = message(n0.revoked(1, page), 1);
    expect(grant).toMatchObject({ type: "dsm-grant", access: "write", owner: true, version: 2, acks: 0 });
    expect(grant.type === "dsm-grant" && grant.data.form === "bytes" && grant.data.bytes[100]).toBe(42);
    expect(only(n1.onMessage(0, grant), "grant").access).toBe("write");

    // node 0 wants it back while node 1's engine has not yet used it: the manager (node 1) queues
    // the request behind the unconfirmed transaction
    const req = message(n0.onLocalFault(1, "read"), 1);
    expect(n1.onMessage(0, req)).toEqual([]);
    expect(n1.inspect(1)).toMatchObject({ busy: "holding", manager: { owner: 0, queued: 2 } });
    // accessDone releases the hold (the manager is local) and serves node 0
    const revoke = only(n1.accessDone(1), "revoke");
    expect(revoke).toEqual({ type: "revoke", page: 1, access: "read", wantBytes: true });
    page[100] = 43;
    const back = message(n1.revoked(1, page), 0);
    expect(back).toMatchObject({ type: "dsm-grant", access: "read", owner: false, version: 2 });
    expect(only(n0.onMessage(1, back), "grant").data).toMatchObject({ form: "bytes" });
    expect(n1.inspect(1)).toMatchObject({ state: "shared-owner", copyset: [0] });
    const confirm = message(n0.accessDone(1), 1);
    expect(n1.onMessage(0, confirm)).toEqual([]);
    expect(n1.inspect(1).manager).toEqual({ owner: 1, queued: 0 });
  });

  it("a fault the local access already allows is granted at once", () => {
    const n0 = new DsmNode({ self: 0, nodes: 3, pages: 1 });
    expect(only(n0.onLocalFault(0, "write"), "grant")).toEqual({ type: "grant", page: 0, access: "write", data: { form: "current" } });
    // a second fault on the page waits until the first grant is used
    expect(n0.onLocalFault(0, "read")).toEqual([]);
    expect(only(n0.accessDone(0), "grant").access).toBe("write");
    expect(n0.accessDone(0)).toEqual([]);
    expect(n0.isQuiescent()).toBe(true);
  });

  it("reports page state changes as sorted runs", () => {
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 8 });
    const n1 = new DsmNode({ self: 1, nodes: 2, pages: 8 });
    for (const p of [3, 4, 5, 7]) {
      // odd pages: node 1 manages them and forwards to node 0; even pages: node 0 manages them
      const req = message(n1.onLocalFault(p, "write"), 0);
      expect(req.type).toBe(p % 2 === 1 ? "dsm-forward" : "dsm-request");
      only(n0.onMessage(1, req), "revoke");
      n1.onMessage(0, message(n0.revoked(p, new Uint8Array(PAGE_SIZE)), 1));
      for (const e of sends(n1.accessDone(p))) n0.onMessage(1, e.msg);
    }
    expect(n0.isQuiescent() && n1.isQuiescent()).toBe(true);
    expect(n0.takePageChanges()).toEqual([
      { first: 3, count: 3, state: "invalid" },
      { first: 7, count: 1, state: "invalid" },
    ]);
    expect(n1.takePageChanges()).toEqual([
      { first: 3, count: 3, state: "modified" },
      { first: 7, count: 1, state: "modified" },
    ]);
    expect(n1.takePageChanges()).toEqual([]);
  });
});

describe("DsmNode errors", () => {
  it("rejects bad configuration and local misuse with DsmUsageError", () => {
    expect(() => new DsmNode({ self: 2, nodes: 2, pages: 1 })).toThrow(DsmUsageError);
    expect(() => new DsmNode({ self: 0, nodes: 0, pages: 1 })).toThrow(/nodes is 0/);
    expect(() => new DsmNode({ self: 0, nodes: 2, pages: 0 })).toThrow(/pages is 0/);
    const n = new DsmNode({ self: 1, nodes: 2, pages: 4 });
    expect(() => n.onLocalFault(4, "read")).toThrow(/page 4 is outside guest RAM/);
    expect(() => n.onLocalFault(0, "exec" as never)).toThrow(DsmUsageError);
    expect(() => n.accessDone(0)).toThrow(/without an outstanding grant/);
    expect(() => n.revoked(0)).toThrow(/without a pending revoke/);
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 4 });
    n0.onMessage(1, { type: "dsm-request", page: 0, access: "read", have: 0 });
    expect(() => n0.revoked(0)).toThrow(/must pass the page's 4096 bytes/);
    expect(() => n0.revoked(0, new Uint8Array(10))).toThrow(DsmUsageError);
    expect(only(n0.revoked(0, new Uint8Array(PAGE_SIZE)), "send").to).toBe(1);
  });

  it("rejects messages that contradict the protocol with DsmProtocolError", () => {
    const n0 = new DsmNode({ self: 0, nodes: 2, pages: 4 });
    const n1 = new DsmNode({ self: 1, nodes: 2, pages: 4 });
    const grant: DsmMessage = {
      type: "dsm-grant",
      page: 0,
      access: "read",
      owner: false,
      version: 1,
      copyset: [],
      acks: 0,
      data: { form: "zero" },
    };
    expect(() => n1.onMessage(0, grant)).toThrow(/did not request/);
    expect(() => n1.onMessage(1, grant)).toThrow(/message from node 1/);
    expect(() => n1.onMessage(7, grant)).toThrow(DsmProtocolError);
    expect(() => n1.onMessage(0, { type: "dsm-request", page: 0, access: "read", have: 0 })).toThrow(/managed by 0/);
    expect(() => n0.onMessage(1, { type: "dsm-invalidate", page: 0, version: 2, ackTo: 1 })).toThrow(/at its owner/);
    expect(() => n0.onMessage(1, { type: "dsm-confirm", page: 0, access: "read" })).toThrow(/not in progress/);
    expect(() => n0.onMessage(1, { type: "dsm-invalidate-ack", page: 0, version: 2 })).toThrow(/unexpected invalidation ack/);
    expect(() => n0.onMessage(1, { type: "dsm-request", page: 9, access: "read", have: 0 })).toThrow(/outside guest RAM/);
    // node 1 does not own page 0, so a forward for it is a protocol violation
    expect(() => n1.onMessage(0, { type: "dsm-forward", page: 0, access: "read", requester: 0, have: 0 })).toThrow(
      /does not own/,
    );
    // a grant claiming the requester's stale copy is current
    n1.onLocalFault(0, "read");
    expect(() => n1.onMessage(0, { ...grant, data: { form: "current" } })).toThrow(/as current/);
  });
});
