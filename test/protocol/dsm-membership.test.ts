// Membership changes of a running VM (issue 14): joins and leaves at global quiescence, directed.
// (Random workloads with joins and leaves: dsm-sim.test.ts.)

import { describe, expect, it } from "vitest";
import { DsmProtocolError, DsmUsageError } from "../../src/protocol/dsm/effects.ts";
import type { DsmEffect } from "../../src/protocol/dsm/effects.ts";
import { MembershipCoordinator } from "../../src/protocol/dsm/membership.ts";
import { DsmNode } from "../../src/protocol/dsm/node.ts";
import type { DsmMessage } from "../../src/protocol/messages.ts";
import { MAX_HANDOFF_PAGES } from "../../src/protocol/messages.ts";
import { PAGE_SIZE } from "../../src/protocol/types.ts";

/**
 * A tiny synchronous cluster: one FIFO of work (deliveries and accessDone calls), engines that
 * keep their own memory, answer revokes at once and use every grant at once.
 */
class Cluster {
  readonly dsm: (DsmNode | null)[];
  readonly mem: Uint8Array[][];
  readonly sent: { from: number; to: number; msg: DsmMessage }[] = [];
  private work: (() => void)[] = [];

  constructor(
    readonly nodes: number,
    readonly pages: number,
    members: number[],
    readonly readTakesOwnership = true,
  ) {
    this.dsm = Array.from({ length: nodes }, (_, self) =>
      members.includes(self) ? new DsmNode({ self, nodes, pages, members, readTakesOwnership }) : null,
    );
    this.mem = Array.from({ length: nodes }, () => Array.from({ length: pages }, () => new Uint8Array(PAGE_SIZE)));
  }

  node(n: number): DsmNode {
    const d = this.dsm[n];
    if (!d) throw new Error(`node ${n} is not running`);
    return d;
  }

  apply(n: number, effects: DsmEffect[]): void {
    for (const e of effects) {
      if (e.type === "send") {
        this.sent.push({ from: n, to: e.to, msg: e.msg });
        this.work.push(() => this.apply(e.to, this.node(e.to).onMessage(n, e.msg)));
      } else if (e.type === "grant") {
        if (e.data.form === "bytes") this.mem[n]![e.page]!.set(e.data.bytes);
        else if (e.data.form === "zero") this.mem[n]![e.page]!.fill(0);
        this.work.push(() => this.apply(n, this.node(n).accessDone(e.page)));
      } else if (e.type === "revoke") {
        this.apply(n, this.node(n).revoked(e.page, e.wantBytes ? this.mem[n]![e.page]!.slice() : undefined));
      }
    }
  }

  run(): void {
    for (let w = this.work.shift(); w; w = this.work.shift()) w();
  }

  fault(n: number, page: number, access: "read" | "write"): void {
    this.apply(n, this.node(n).onLocalFault(page, access));
    this.run();
  }

  members(): number[] {
    return this.dsm.flatMap((d, n) => (d ? [n] : []));
  }

  join(k: number): void {
    const after = [...this.members(), k].sort((a, b) => a - b);
    for (const n of this.members()) this.apply(n, this.node(n).addMember(k));
    const { nodes, pages, readTakesOwnership } = this;
    this.dsm[k] = new DsmNode({ self: k, nodes, pages, members: after, joining: true, readTakesOwnership });
    this.mem[k] = Array.from({ length: this.pages }, () => new Uint8Array(PAGE_SIZE));
    this.run();
  }

  /** Returns the node that left, for inspection. */
  leave(k: number): DsmNode {
    const leaver = this.node(k);
    const mem = this.mem[k]!;
    for (const n of this.members()) if (n !== k) this.apply(n, this.node(n).removeMember(k));
    this.apply(k, leaver.leave((p) => mem[p]!));
    this.run();
    this.dsm[k] = null;
    return leaver;
  }
}

const word = (m: Uint8Array) => new DataView(m.buffer, m.byteOffset).getUint32(0, true);
const setWord = (m: Uint8Array, v: number) => new DataView(m.buffer, m.byteOffset).setUint32(0, v, true);

describe("DSM membership", () => {
  it("managerOf: a slot's pages are managed by node 0 until that slot joins, and again after it leaves", () => {
    const c = new Cluster(4, 8, [0, 1]);
    const managers = (n: number) => Array.from({ length: 8 }, (_, p) => c.node(n).managerOf(p));
    expect(managers(0)).toEqual([0, 1, 0, 0, 0, 1, 0, 0]);
    expect(managers(1)).toEqual(managers(0));
    c.join(2);
    for (const n of [0, 1, 2]) expect(managers(n)).toEqual([0, 1, 2, 0, 0, 1, 2, 0]);
    expect(c.node(2).members()).toEqual([0, 1, 2]);
    c.leave(1);
    for (const n of [0, 2]) expect(managers(n)).toEqual([0, 0, 2, 0, 0, 0, 2, 0]);
    expect(c.node(0).members()).toEqual([0, 2]);
  });

  it("join: the newcomer gets its pages' manager records from node 0, starts with no page, and can fault", () => {
    const c = new Cluster(3, 6, [0]);
    setWord(c.mem[0]![4]!, 1234);
    c.apply(0, c.node(0).addMember(1));
    expect(c.sent.map((s) => [s.to, s.msg])).toEqual([[1, { type: "dsm-records", records: [{ page: 1, owner: 0 }, { page: 4, owner: 0 }] }]]);
    const n1 = new DsmNode({ self: 1, nodes: 3, pages: 6, members: [0, 1], joining: true });
    c.dsm[1] = n1;
    // Until its records arrive, the newcomer is not quiescent and refuses requests for its pages.
    expect(n1.isQuiescent()).toBe(false);
    expect(() => n1.onLocalFault(4, "read")).toThrow(/membership change is in progress/);
    c.run();
    expect(n1.isQuiescent()).toBe(true);
    for (let p = 0; p < 6; p++) expect(n1.inspect(p)).toMatchObject({ state: "invalid", version: 0, owner: false });
    expect(n1.inspect(4).manager).toEqual({ owner: 0, queued: 0 });
    expect(c.node(0).inspect(4).manager).toBeNull();

    // The newcomer faults on a page it manages: request to itself, forward to node 0, bytes back.
    c.sent.length = 0;
    c.fault(1, 4, "read");
    expect(c.sent.map((s) => `${s.from}->${s.to} ${s.msg.type}`)).toEqual(["1->0 dsm-forward", "0->1 dsm-grant"]);
    expect(word(c.mem[1]![4]!)).toBe(1234);
    expect(n1.inspect(4)).toMatchObject({ state: "shared-owner", version: 1, copyset: [0], manager: { owner: 1, queued: 0 } });
    // ... and on a page node 0 manages.
    c.fault(1, 3, "write");
    expect(n1.inspect(3)).toMatchObject({ state: "modified", version: 2 });
    expect(c.node(0).inspect(3).manager).toEqual({ owner: 1, queued: 0 });
  });

  it("leave: node 0 adopts the leaver's pages with their version and copyset, and the leaver is referenced nowhere", () => {
    const c = new Cluster(3, 6, [0, 1, 2], false);
    c.fault(1, 1, "write"); // node 1 owns page 1 at version 2
    setWord(c.mem[1]![1]!, 77);
    c.fault(2, 1, "read"); // node 2 reads it: node 1 stays owner (readTakesOwnership off), copyset [2]
    c.fault(1, 3, "write"); // page 3 (managed by node 0): owned by node 1, version 2, no copies
    c.fault(0, 3, "read"); // ... now node 0 holds a copy
    expect(c.node(1).inspect(1)).toMatchObject({ state: "shared-owner", version: 2, copyset: [2], manager: { owner: 1 } });
    expect(c.node(1).inspect(3)).toMatchObject({ state: "shared-owner", version: 2, copyset: [0] });
    expect(c.node(2).inspect(2).manager?.owner).toBe(0);

    c.sent.length = 0;
    const leaver = c.leave(1);
    const handoff = c.sent.filter((s) => s.msg.type === "dsm-handoff");
    expect(handoff.map((s) => s.to)).toEqual([0]);
    const m = handoff[0]!.msg;
    if (m.type !== "dsm-handoff") throw new Error("unreachable");
    expect(m.last).toBe(true);
    expect(m.pages.map((p) => ({ ...p, data: p.data.form }))).toEqual([
      { page: 1, version: 2, copyset: [2], data: "bytes" },
      { page: 3, version: 2, copyset: [0], data: "current" }, // node 0 already holds version 2
    ]);
    expect(c.sent.filter((s) => s.msg.type === "dsm-records").map((s) => s.msg)).toEqual([
      { type: "dsm-records", records: [{ page: 1, owner: 1 }, { page: 4, owner: 0 }] },
    ]);

    const n0 = c.node(0);
    expect(n0.isQuiescent()).toBe(true);
    expect(n0.inspect(1)).toMatchObject({ state: "shared-owner", version: 2, copyset: [2], manager: { owner: 0, queued: 0 } });
    expect(n0.inspect(3)).toMatchObject({ state: "shared-owner", version: 2, copyset: [], manager: { owner: 0, queued: 0 } });
    expect(word(c.mem[0]![1]!)).toBe(77);
    for (let p = 0; p < 6; p++) {
      expect(leaver.inspect(p)).toMatchObject({ state: "invalid", owner: false, version: 0, copyset: [] });
      for (const n of [0, 2]) {
        const v = c.node(n).inspect(p);
        expect(v.copyset).not.toContain(1);
        if (v.manager) expect(v.manager.owner).not.toBe(1);
      }
    }
    expect(leaver.hasLeft()).toBe(true);

    // The VM goes on: node 2 writes page 1, whose manager is now node 0.
    c.fault(2, 1, "write");
    expect(c.node(2).inspect(1)).toMatchObject({ state: "modified", version: 3 });
    expect(word(c.mem[2]![1]!)).toBe(77);
    // The slot may join again as a fresh node.
    c.join(1);
    c.fault(1, 1, "read");
    expect(word(c.mem[1]![1]!)).toBe(77);
    expect(c.node(1).inspect(1)).toMatchObject({ state: "shared", version: 3, manager: { owner: 2, queued: 0 } });
  });

  it("big handoffs travel in bounded batches", () => {
    const pages = 2 * MAX_HANDOFF_PAGES + 5;
    const c = new Cluster(2, pages, [0, 1]);
    for (let p = 0; p < pages; p++) c.fault(1, p, "write");
    c.sent.length = 0;
    c.leave(1);
    const batches = c.sent.flatMap((s) => (s.msg.type === "dsm-handoff" ? [s.msg] : []));
    expect(batches.map((b) => [b.pages.length, b.last])).toEqual([
      [MAX_HANDOFF_PAGES, false],
      [MAX_HANDOFF_PAGES, false],
      [5, true],
    ]);
    for (let p = 0; p < pages; p++) expect(c.node(0).inspect(p)).toMatchObject({ owner: true, version: 2 });
  });

  it("refuses messages from nodes that are not members, and handoffs or records nobody expects", () => {
    const c = new Cluster(3, 4, [0, 1]);
    const n0 = c.node(0);
    const req: DsmMessage = { type: "dsm-request", page: 0, access: "read", have: 0 };
    expect(() => n0.onMessage(2, req)).toThrow(DsmProtocolError);
    expect(() => n0.onMessage(2, req)).toThrow(/dsm-request from node 2, which is not a member/);
    expect(() => n0.onMessage(1, { type: "dsm-handoff", pages: [], last: true })).toThrow(/does not expect/);
    expect(() => c.node(1).onMessage(0, { type: "dsm-records", records: [{ page: 1, owner: 0 }] })).toThrow(/does not expect/);
    // a grant naming a non-member in its copyset
    c.apply(1, c.node(1).onLocalFault(0, "read"));
    expect(() =>
      c.node(1).onMessage(0, { type: "dsm-grant", page: 0, access: "read", owner: true, version: 1, copyset: [2], acks: 0, data: { form: "zero" } }),
    ).toThrow(/impossible owner\/copyset/);

    // After a leave, the leaver's ordinary traffic is refused; a handoff from someone else too.
    const d = new Cluster(3, 4, [0, 1, 2]);
    d.leave(2);
    expect(() => d.node(0).onMessage(2, req)).toThrow(/not a member/);
    const e = new Cluster(3, 4, [0, 1, 2]);
    e.apply(0, e.node(0).removeMember(2));
    expect(() => e.node(0).onMessage(1, { type: "dsm-handoff", pages: [], last: true })).toThrow(/does not expect/);
    expect(() => e.node(0).onMessage(2, req)).toThrow(/not a member/);
    // A handoff claiming a page node 0 owns.
    expect(() => e.node(0).onMessage(2, { type: "dsm-handoff", pages: [{ page: 0, version: 1, copyset: [], data: { form: "zero" } }], last: true })).toThrow(
      /owns or uses/,
    );
  });

  it("a joining node refuses requests for its pages until node 0's records arrived", () => {
    const n1 = new DsmNode({ self: 1, nodes: 2, pages: 4, members: [0, 1], joining: true });
    expect(() => n1.onMessage(0, { type: "dsm-request", page: 1, access: "read", have: 0 })).toThrow(/before its manager record arrived/);
    expect(() => n1.onMessage(0, { type: "dsm-records", records: [{ page: 1, owner: 1 }] })).toThrow(/not a possible owner/);
    expect(() => n1.onMessage(0, { type: "dsm-records", records: [{ page: 2, owner: 0 }] })).toThrow(/does not await/);
    n1.onMessage(0, { type: "dsm-records", records: [{ page: 1, owner: 0 }, { page: 3, owner: 0 }] });
    expect(n1.isQuiescent()).toBe(true);
  });

  it("node 0 never leaves; changes need quiescence and valid ids", () => {
    const c = new Cluster(3, 4, [0, 1, 2]);
    expect(() => c.node(0).leave(() => new Uint8Array(PAGE_SIZE))).toThrow(DsmUsageError);
    expect(() => c.node(1).removeMember(0)).toThrow(/node 0 holds the devices and never leaves/);
    expect(() => new MembershipCoordinator(3, [0, 1, 2]).propose({ kind: "leave", node: 0 })).toThrow(/never leaves/);
    expect(() => c.node(0).addMember(1)).toThrow(/already a member/);
    expect(() => c.node(0).addMember(3)).toThrow(/expected a node id in 0..2/);
    expect(() => new DsmNode({ self: 1, nodes: 3, pages: 4, members: [1, 2] })).toThrow(/must include node 0/);
    expect(() => new DsmNode({ self: 0, nodes: 3, pages: 4, joining: true })).toThrow(/cannot join/);
    c.apply(1, c.node(1).onLocalFault(0, "read"));
    expect(() => c.node(1).removeMember(2)).toThrow(/transactions in flight/);
    expect(() => c.node(1).leave(() => new Uint8Array(PAGE_SIZE))).toThrow(/transactions are in flight/);
  });
});

describe("MembershipCoordinator", () => {
  const report = (node: number, sent: number[], received: number[], quiescent = true) => ({ node, quiescent, sent, received });

  it("declares quiescence after two consecutive balanced rounds with equal counts, then completes the change", () => {
    const co = new MembershipCoordinator(3, [0, 1]);
    expect(() => co.beginRound()).toThrow(/no membership change/);
    expect(co.propose({ kind: "join", node: 2 })).toEqual([0, 1]);
    expect(() => co.propose({ kind: "leave", node: 1 })).toThrow(/already in progress/);
    let r = co.beginRound();
    expect(r.ask).toEqual([0, 1]);
    // node 1 sent a message node 0 has not received yet
    expect(co.report(r.round, report(0, [0, 3, 0], [0, 4, 0]))).toBeNull();
    expect(co.report(r.round, report(1, [5, 0, 0], [3, 0, 0]))).toEqual({ kind: "again", busy: [], unbalanced: [[1, 0]] });
    r = co.beginRound();
    co.report(r.round, report(0, [0, 3, 0], [0, 5, 0], false));
    expect(co.report(r.round, report(1, [5, 0, 0], [3, 0, 0]))).toEqual({ kind: "again", busy: [0], unbalanced: [] });
    r = co.beginRound();
    co.report(r.round, report(0, [0, 3, 0], [0, 5, 0]));
    expect(co.report(r.round, report(1, [5, 0, 0], [3, 0, 0]))?.kind).toBe("again"); // first balanced round
    // a report for an older round is ignored
    expect(co.report(r.round - 1, report(0, [0, 3, 0], [0, 5, 0]))).toBeNull();
    r = co.beginRound();
    co.report(r.round, report(0, [0, 3, 0], [0, 5, 0]));
    expect(co.report(r.round, report(1, [5, 0, 0], [3, 0, 0]))).toEqual({ kind: "apply", change: { kind: "join", node: 2 } });
    // applying: the newcomer is asked too; node 0 sent it one batch of records
    r = co.beginRound();
    expect(r.ask).toEqual([0, 1, 2]);
    co.report(r.round, report(0, [0, 3, 1], [0, 5, 0]));
    co.report(r.round, report(1, [5, 0, 0], [3, 0, 0]));
    expect(co.report(r.round, report(2, [0, 0, 0], [0, 0, 0], false))).toEqual({ kind: "again", busy: [2], unbalanced: [[0, 2]] });
    for (let i = 0; i < 2; i++) {
      r = co.beginRound();
      co.report(r.round, report(0, [0, 3, 1], [0, 5, 0]));
      co.report(r.round, report(1, [5, 0, 0], [3, 0, 0]));
      const d = co.report(r.round, report(2, [0, 0, 0], [1, 0, 0]));
      expect(d?.kind).toBe(i === 0 ? "again" : "complete");
      if (i === 1) expect(d).toEqual({ kind: "complete", change: { kind: "join", node: 2 }, members: [0, 1, 2] });
    }
    expect(co.members()).toEqual([0, 1, 2]);
    expect(() => co.report(r.round, report(5, [], []))).not.toThrow(); // stale: ignored once running
  });

  it("counts changing between the two rounds restart the confirmation", () => {
    const co = new MembershipCoordinator(2, [0, 1]);
    co.propose({ kind: "leave", node: 1 });
    const round = (sent: number) => {
      const r = co.beginRound();
      co.report(r.round, report(0, [0, sent], [0, sent]));
      return co.report(r.round, report(1, [sent, 0], [sent, 0]));
    };
    expect(round(1)?.kind).toBe("again");
    expect(round(2)?.kind).toBe("again"); // balanced both times, but traffic happened in between
    expect(round(2)?.kind).toBe("apply");
    expect(() => co.report(co.beginRound().round, report(0, [0], [0]))).toThrow(/each of the 2 slots/);
  });
});
