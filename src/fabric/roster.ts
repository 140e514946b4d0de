// Membership as a pure state machine. Tab 0 (the host) is the only one that admits members and
// assigns tab ids and vCPU slices; it publishes each new roster with a higher epoch, and every
// other tab adopts a roster only if its epoch is newer, so reordered messages cannot undo a change.
// No I/O, no clocks: fed by (already validated) messages, answers with a new state and a decision.
//
// Tab ids are reused. They are one byte on the VM wire (MAX_TAB_ID), so widening them would change
// the VM's frames; a cluster that only handed out new ids ran out after 254 joins. Reuse is safe
// because a member is (tab id, peer id), never the id alone:
// - a frame is attributed to the link it came on, and every tab closes its link to a member as
//   soon as it learns the member is gone (its link closed, or a roster no longer lists that
//   (tab, peer)); a closed link delivers nothing more, so nothing the old member sent can arrive
//   under the id once the new member holds it;
// - signaling messages are matched by peer id, rosters are ordered by epoch, and `applyRoster`
//   compares (tab, peer), so a roster that gives an id to a new peer removes the old member (its
//   link is closed) and adds the new one (its offer is accepted);
// - ids are handed out round-robin from a cursor (`nextTab`): a freed id comes back only after
//   every other free id was handed out since, which leaves the most time for anything of the old
//   member still queued above the fabric (the VM's own rings) to drain.

import type { JoinRejectCode } from "./errors.ts";
import { tokensEqual } from "./ids.ts";
import { type ClusterShape, FABRIC_VERSION, MAX_CLUSTER_VCPUS, MAX_TAB_ID, type Member, type SignalBody } from "./messages.ts";

export interface RosterState {
  shape: ClusterShape;
  epoch: number;
  /** Sorted by tab id. */
  members: readonly Member[];
  /** Host only: where the round-robin search for a free tab id starts (1..MAX_TAB_ID). */
  nextTab: number;
}

export type JoinRequest = Extract<SignalBody, { t: "join" }> & { peer: string };

export type Admission =
  | { ok: true; member: Member; state: RosterState }
  | { ok: false; code: JoinRejectCode; detail: string; state: RosterState };

export function checkShape(shape: ClusterShape, hostVcpus: number): void {
  const bad = (why: string) => {
    throw new RangeError(`cluster shape: ${why}`);
  };
  if (!Number.isInteger(shape.totalVcpus) || shape.totalVcpus < 1 || shape.totalVcpus > MAX_CLUSTER_VCPUS)
    bad(`totalVcpus ${shape.totalVcpus} is not in 1..${MAX_CLUSTER_VCPUS}`);
  if (!Number.isInteger(shape.maxTabs) || shape.maxTabs < 1 || shape.maxTabs > MAX_TAB_ID + 1)
    bad(`maxTabs ${shape.maxTabs} is not in 1..${MAX_TAB_ID + 1}`);
  if (!Number.isInteger(shape.protocol) || shape.protocol < 0 || shape.protocol > 0xffff)
    bad(`VM protocol version ${shape.protocol} is not in 0..65535`);
  if (!Number.isInteger(hostVcpus) || hostVcpus < 1 || hostVcpus > shape.totalVcpus)
    bad(`tab 0 hosts ${hostVcpus} vCPUs; it needs the boot CPU and at most totalVcpus (${shape.totalVcpus})`);
}

/** The roster tab 0 starts with: itself, holding vCPUs 0..hostVcpus-1 (vCPU 0 is the boot CPU). */
export function hostRoster(shape: ClusterShape, peer: string, hostVcpus: number, build: string): RosterState {
  checkShape(shape, hostVcpus);
  const host: Member = { tab: 0, peer, role: "host", vcpus: range(0, hostVcpus), build };
  return { shape, epoch: 1, members: [host], nextTab: 1 };
}

export function freeVcpus(state: RosterState): number[] {
  const used = new Set(state.members.flatMap((m) => m.vcpus));
  return range(0, state.shape.totalVcpus).filter((v) => !used.has(v));
}

/** The tokens a cluster admits with: the join link's (any role) and the watch link's (watchers only). */
export interface ClusterTokens {
  join: string;
  watch?: string;
}

/** Host side: decide on a join request. A repeated request from an admitted peer gets the same answer. */
export function admit(state: RosterState, req: JoinRequest, tokens: ClusterTokens): Admission {
  const reject = (code: JoinRejectCode, detail: string): Admission => ({ ok: false, code, detail, state });
  const watchOnly = tokens.watch !== undefined && tokensEqual(req.token, tokens.watch);
  if (!watchOnly && !tokensEqual(req.token, tokens.join)) return reject("wrong-token", "the join link's token is not this cluster's");
  if (watchOnly && req.role !== "watcher") return reject("wrong-token", "this is a watch link: it lets a tab watch the cluster, not host vCPUs");
  if (req.fabric !== FABRIC_VERSION || req.protocol !== state.shape.protocol)
    return reject(
      "version-mismatch",
      `this cluster speaks fabric v${FABRIC_VERSION} / VM protocol v${state.shape.protocol}, ` +
        `the joining tab speaks fabric v${req.fabric} / VM protocol v${req.protocol} (${req.build}); reload both tabs from the same build`,
    );
  const existing = state.members.find((m) => m.peer === req.peer);
  if (existing) return { ok: true, member: existing, state };
  if (state.members.length >= state.shape.maxTabs)
    return reject("cluster-full", `the cluster already has its ${state.shape.maxTabs} tab(s)`);
  const wanted = req.role === "watcher" ? 0 : req.vcpus;
  if (req.role === "compute" && wanted < 1) return reject("bad-message", "a compute tab must ask for at least one vCPU");
  const free = freeVcpus(state);
  if (wanted > free.length)
    return reject(
      "cluster-full",
      `the tab asks for ${wanted} vCPU(s) but only ${free.length} of the cluster's ${state.shape.totalVcpus} are free` +
        (free.length > 0 ? `; join with ${free.length} or fewer, or as a watcher` : "; join as a watcher"),
    );
  const tab = freeTab(state);
  if (tab === undefined) return reject("cluster-full", `all ${MAX_TAB_ID} tab ids of this cluster are in use`);
  const member: Member = { tab, peer: req.peer, role: req.role, vcpus: free.slice(0, wanted), build: req.build };
  const members = [...state.members, member].sort((a, b) => a.tab - b.tab);
  return { ok: true, member, state: { ...state, members, epoch: state.epoch + 1, nextTab: tab === MAX_TAB_ID ? 1 : tab + 1 } };
}

/** The first tab id not in use, searching round-robin from the cursor (tab 0 is never handed out). */
function freeTab(state: RosterState): number | undefined {
  const used = new Set(state.members.map((m) => m.tab));
  const start = Math.min(Math.max(state.nextTab, 1), MAX_TAB_ID);
  for (let i = 0; i < MAX_TAB_ID; i++) {
    const tab = ((start - 1 + i) % MAX_TAB_ID) + 1;
    if (!used.has(tab)) return tab;
  }
  return undefined;
}

/**
 * A member left (bye, closed link or relay notice). Tab 0 publishes the result as a new epoch;
 * other tabs drop the member locally without a new epoch, so tab 0's next roster still wins.
 */
export function removeMember(state: RosterState, tab: number, asHost: boolean): { state: RosterState; removed?: Member } {
  const removed = state.members.find((m) => m.tab === tab);
  if (!removed) return { state };
  const members = state.members.filter((m) => m.tab !== tab);
  return { state: { ...state, members, epoch: asHost ? state.epoch + 1 : state.epoch }, removed };
}

/**
 * Non-host side: adopt tab 0's roster if it is newer. Returns the members that appeared and the
 * ones that are gone (compared with what this tab knew, by tab id and peer: an id given to another
 * peer is one member gone and one new), so the caller can open or drop links.
 */
export function applyRoster(
  state: RosterState,
  msg: { epoch: number; members: readonly Member[] },
): { state: RosterState; added: Member[]; removed: Member[] } {
  if (msg.epoch <= state.epoch) return { state, added: [], removed: [] };
  const key = (m: Member) => `${m.tab}:${m.peer}`;
  const before = new Set(state.members.map(key));
  const after = new Set(msg.members.map(key));
  const added = msg.members.filter((m) => !before.has(key(m)));
  const removed = state.members.filter((m) => !after.has(key(m)));
  const members = [...msg.members].sort((a, b) => a.tab - b.tab);
  return { state: { ...state, epoch: msg.epoch, members }, added, removed };
}

/** True when every vCPU of the cluster has a tab: tab 0 may boot. */
export const slicesCoverAll = (state: RosterState): boolean => freeVcpus(state).length === 0;

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
