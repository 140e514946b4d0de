// The membership coordinator: decides when the DSM of a running VM may change members (a node
// joins or leaves) and when the change is complete. Pure: the runtime feeds it the nodes'
// quiescence reports (`DsmNode.quiescenceReport()`) and carries out its decisions; no timers.
//
// A change, step by step (the runtime's side in brackets):
//   1. `propose(change)` -> the nodes to pause. [Pause every engine at an instruction boundary. A
//      paused engine still answers revokes, and answers grants with accessDone (it may release
//      without retrying): otherwise a transaction in flight never ends.]
//   2. Report rounds: `beginRound()` names the nodes to ask; feed each answer to `report()`. When
//      a round is complete the decision is "again" (start another round, e.g. after a short
//      delay) or "apply".
//   3. "apply" [at every node, before any engine resumes: join k -> `addMember(k)` at every member
//      and a fresh `DsmNode({ self: k, members: after, joining: true })` at k; leave k -> `leave()`
//      at k and `removeMember(k)` at every other member.] Node 0's records to a newcomer, and a
//      leaving node's handoff to node 0, are then in flight.
//   4. Report rounds again until "complete" (the newcomer has its records, node 0 has adopted the
//      leaver's pages and its engine acknowledged them). [Discard the node that left; resume.]
//
// When is the VM quiescent? Only when every participant reports quiescent (nothing in flight at
// that node) and for every pair (i, j) the DSM messages i sent to j equal those j received from i,
// in TWO consecutive complete rounds with identical counts. (One round would in fact suffice while
// every engine is paused: a quiescent node with a paused engine only sends in reaction to a
// message; a message received after its receiver reported breaks that pair's balance unless it was
// sent after its sender reported, and that sender must then itself have received one after its
// report, and so on back in time through finitely many messages: impossible. The second round is
// kept as the classic four-counter safeguard, so that a report which is not an atomic snapshot of
// its node, or an engine that was not quite paused yet, cannot end the wait early; it costs one
// more round trip per change.)
//
// Counts: a node resets its counts for k when k joins (every pair is balanced then and the
// newcomer starts at zero), so a node id that left may join again as a fresh DsmNode. Pairs with
// a node that left are no longer compared.

import type { NodeId } from "../types.ts";
import { MAX_NODES } from "../types.ts";
import { DsmUsageError } from "./effects.ts";
import type { DsmQuiescenceReport } from "./node.ts";

export type MembershipChange = { kind: "join" | "leave"; node: NodeId };

export type CoordinatorDecision =
  /** Not (yet) quiescent: start another round. */
  | { kind: "again"; busy: NodeId[]; unbalanced: [NodeId, NodeId][] }
  /** Globally quiescent: apply the change at every node, then keep running rounds. */
  | { kind: "apply"; change: MembershipChange }
  /** The change is complete everywhere: discard a node that left, resume every engine. */
  | { kind: "complete"; change: MembershipChange; members: NodeId[] };

type Phase = "running" | "draining" | "applying";

export class MembershipCoordinator {
  readonly nodes: number;
  private live: Set<NodeId>;
  private phase: Phase = "running";
  private change: MembershipChange | null = null;
  private round = 0;
  private expected: NodeId[] = [];
  private reports = new Map<NodeId, DsmQuiescenceReport>();
  /** The previous complete round's counts, when it was quiescent and balanced. */
  private previous: string | null = null;

  constructor(nodes: number, members: readonly NodeId[]) {
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
      throw new DsmUsageError(`nodes is ${nodes}, expected 1..${MAX_NODES}`);
    this.nodes = nodes;
    this.live = new Set(members);
    if (this.live.size !== members.length || members.some((n) => !Number.isInteger(n) || n < 0 || n >= nodes) || !this.live.has(0))
      throw new DsmUsageError(`members [${members.join(", ")}] must be distinct ids in 0..${nodes - 1} including node 0`);
  }

  members(): NodeId[] {
    return [...this.live].sort((a, b) => a - b);
  }

  /** The change in progress, if any. */
  pending(): MembershipChange | null {
    return this.change;
  }

  /** Starts a change; returns the nodes whose engines must pause. One change at a time. */
  propose(change: MembershipChange): NodeId[] {
    if (this.phase !== "running") throw new DsmUsageError("a membership change is already in progress");
    const k = change?.node;
    if (!Number.isInteger(k) || k < 0 || k >= this.nodes) throw new DsmUsageError(`node ${k} is not a slot in 0..${this.nodes - 1}`);
    if (change.kind === "join") {
      if (this.live.has(k)) throw new DsmUsageError(`node ${k} is already a member`);
    } else if (change.kind === "leave") {
      if (k === 0) throw new DsmUsageError("node 0 holds the devices and never leaves");
      if (!this.live.has(k)) throw new DsmUsageError(`node ${k} is not a member`);
    } else throw new DsmUsageError(`unknown membership change ${String((change as { kind?: unknown }).kind)}`);
    this.change = { kind: change.kind, node: k };
    this.phase = "draining";
    this.previous = null;
    return this.members();
  }

  /** Starts a report round (abandoning an incomplete one); returns whom to ask. */
  beginRound(): { round: number; ask: NodeId[] } {
    if (this.phase === "running" || this.change === null) throw new DsmUsageError("no membership change in progress");
    const ask = new Set(this.live);
    if (this.phase === "applying") ask.add(this.change.node); // the newcomer, or the leaver handing over
    this.round++;
    this.expected = [...ask].sort((a, b) => a - b);
    this.reports.clear();
    return { round: this.round, ask: [...this.expected] };
  }

  /**
   * One node's answer for `round`. Returns null while the round is incomplete (or the report is
   * for an older round), else the decision.
   */
  report(round: number, r: DsmQuiescenceReport): CoordinatorDecision | null {
    if (round !== this.round || this.phase === "running") return null;
    if (!this.expected.includes(r?.node)) throw new DsmUsageError(`report from node ${r?.node}, not asked in round ${round}`);
    if (!Array.isArray(r.sent) || !Array.isArray(r.received) || r.sent.length !== this.nodes || r.received.length !== this.nodes)
      throw new DsmUsageError(`report from node ${r.node} must count messages for each of the ${this.nodes} slots`);
    this.reports.set(r.node, r);
    if (this.reports.size < this.expected.length) return null;
    return this.decide();
  }

  private decide(): CoordinatorDecision {
    const busy: NodeId[] = [];
    const unbalanced: [NodeId, NodeId][] = [];
    const counts: number[] = [];
    for (const i of this.expected) {
      const ri = this.reports.get(i)!;
      if (!ri.quiescent) busy.push(i);
      for (const j of this.expected) {
        if (i === j) continue;
        const sent = ri.sent[j]!;
        if (sent !== this.reports.get(j)!.received[i]) unbalanced.push([i, j]);
        counts.push(sent);
      }
    }
    const now = counts.join();
    const settled = busy.length === 0 && unbalanced.length === 0;
    const confirmed = settled && this.previous === now;
    this.previous = settled ? now : null;
    if (!confirmed) return { kind: "again", busy, unbalanced };
    const change = this.change!;
    this.previous = null;
    if (this.phase === "draining") {
      this.phase = "applying";
      return { kind: "apply", change };
    }
    if (change.kind === "join") this.live.add(change.node);
    else this.live.delete(change.node);
    this.phase = "running";
    this.change = null;
    return { kind: "complete", change, members: this.members() };
  }
}
