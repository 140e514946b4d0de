// Carries out one membership change of a running VM (a node joins with a vCPU, or leaves after the
// guest ejected its vCPU), following the pure MembershipCoordinator (src/protocol/dsm/membership.ts):
// pause every engine, report rounds until the DSM is quiescent everywhere, apply the change at
// every node before any engine resumes, report rounds until it is complete, resume.
// Environment-neutral: the Node cluster (worker_threads) and a tab's cluster runtime give it their
// way of reaching each node (`MembershipNodes`).

import type { DsmQuiescenceReport } from "../../protocol/dsm/node.ts";
import type { MembershipCoordinator } from "../../protocol/dsm/membership.ts";
import type { NodeId } from "../../protocol/types.ts";

/** How the driver reaches the nodes (each call resolves once the node did it). */
export interface MembershipNodes {
  /** Stops the node's vCPU at an instruction boundary; the node keeps serving its peers. */
  pause(node: NodeId): Promise<void>;
  resume(node: NodeId): Promise<void>;
  report(node: NodeId): Promise<DsmQuiescenceReport>;
  /** DsmNode.addMember(k) at `at` (node 0 then sends k its manager records). */
  addMember(at: NodeId, k: NodeId): Promise<void>;
  /** DsmNode.removeMember(k) at `at`. */
  removeMember(at: NodeId, k: NodeId): Promise<void>;
  /** DsmNode.leave at k: its owned pages and manager records go to node 0. */
  leave(k: NodeId): Promise<void>;
  /** The interrupt router at `at` learns that `vcpu` is hosted by `host` (null: by nobody). */
  setHost(at: NodeId, vcpu: number, host: NodeId | null): Promise<void>;
  /** Starts the joining node k (its DSM built joining, with `members`), before the others learn of it. */
  start(k: NodeId, members: NodeId[]): Promise<void>;
  /** Waits a little between report rounds (the links carry what is in flight meanwhile). */
  sleep(ms: number): Promise<void>;
}

export interface MembershipChangeResult {
  members: NodeId[];
  /** Report rounds it took (both phases), and wall time paused, for the notes and the benchmark. */
  rounds: number;
  pausedMs: number;
}

/** At most this many report rounds per change; beyond, the VM is stuck (a bug), and the change fails. */
const MAX_ROUNDS = 2000;

export class MembershipChangeError extends Error {
  override name = "MembershipChangeError";
}

/**
 * Node `k` joins hosting `vcpu`. Afterwards the guest still sees the CPU absent: the caller plugs
 * it in at node 0's hotplug device, and the guest brings it up (INIT/SIPI to k).
 */
export async function joinNode(coord: MembershipCoordinator, nodes: MembershipNodes, k: NodeId, vcpu: number, now: () => number): Promise<MembershipChangeResult> {
  // The new node starts before the VM pauses (starting an engine takes about a second): until the
  // guest sends its CPU INIT/SIPI it sends nothing, and what the others send it (node 0's manager
  // records, the APIC addressing) waits in its rings, so the pause covers only the DSM change.
  const before = coord.members();
  if (before.includes(k)) throw new MembershipChangeError(`node ${k} is already a member`);
  await nodes.start(k, [...before, k].sort((a, b) => a - b));
  return change(coord, nodes, { kind: "join", node: k }, now, async () => {
    for (const m of before) await nodes.addMember(m, k);
    for (const m of before) await nodes.setHost(m, vcpu, k);
  });
}

/**
 * Node `k` (hosting `vcpu`, which the guest has ejected; its engine is stopped for good) leaves:
 * its pages go to node 0, the others forget it. The caller then ends the node.
 */
export function leaveNode(coord: MembershipCoordinator, nodes: MembershipNodes, k: NodeId, vcpu: number, now: () => number): Promise<MembershipChangeResult> {
  return change(coord, nodes, { kind: "leave", node: k }, now, async (before) => {
    const rest = before.filter((m) => m !== k);
    // Node 0 must await k's handoff before it arrives (it refuses pages it does not expect).
    for (const m of rest) await nodes.removeMember(m, k);
    for (const m of rest) await nodes.setHost(m, vcpu, null);
    await nodes.leave(k);
  });
}

async function change(
  coord: MembershipCoordinator,
  nodes: MembershipNodes,
  what: { kind: "join" | "leave"; node: NodeId },
  now: () => number,
  apply: (members: NodeId[]) => Promise<void>,
): Promise<MembershipChangeResult> {
  const before = coord.members();
  const toPause = coord.propose(what);
  const start = now();
  await Promise.all(toPause.map((n) => nodes.pause(n)));
  let rounds = 0;
  let last = "";
  for (;;) {
    if (++rounds > MAX_ROUNDS)
      throw new MembershipChangeError(`the ${what.kind} of node ${what.node} did not settle in ${MAX_ROUNDS} report rounds (${last})`);
    const { round, ask } = coord.beginRound();
    const reports = await Promise.all(ask.map((n) => nodes.report(n)));
    let decision = null;
    for (const r of reports) decision = coord.report(round, r) ?? decision;
    if (decision === null) throw new MembershipChangeError(`report round ${round} got no decision (asked ${ask.join(", ")})`);
    if (decision.kind === "again") {
      last = `busy: ${decision.busy.join(", ") || "none"}; unbalanced pairs: ${decision.unbalanced.map(([i, j]) => `${i}->${j}`).join(", ") || "none"}`;
      await nodes.sleep(rounds < 10 ? 1 : 10);
    }
    else if (decision.kind === "apply") await apply(before);
    else {
      const members = decision.members;
      await Promise.all(members.map((n) => nodes.resume(n)));
      return { members, rounds, pausedMs: now() - start };
    }
  }
}
