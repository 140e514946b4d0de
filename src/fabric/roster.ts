// Membership as a pure state machine. Tab 0 (the host) is the only one that admits members and
// assigns tab ids and vCPU slices; it publishes each new roster with a higher epoch, and every
// other tab adopts a roster only if its epoch is newer, so reordered messages cannot undo a change.
// No I/O, no clocks: fed by (already validated) messages, answers with a new state and a decision.

import type { JoinRejectCode } from "./errors.ts";
import { tokensEqual } from "./ids.ts";
import { type ClusterShape, FABRIC_VERSION, MAX_CLUSTER_VCPUS, MAX_TAB_ID, type Member, type SignalBody } from "./messages.ts";

export interface RosterState {
  shape: ClusterShape;
  epoch: number;
  /** Sorted by tab id. */
  members: readonly Member[];
  /** Host only: next tab id to hand out (ids are never reused, so a stale message cannot hit a newcomer). */
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

/** Host side: decide on a join request. A repeated request from an admitted peer gets the same answer. */
export function admit(state: RosterState, req: JoinRequest, clusterToken: string): Admission {
  const reject = (code: JoinRejectCode, detail: string): Admission => ({ ok: false, code, detail, state });
  if (!tokensEqual(req.token, clusterToken)) return reject("wrong-token", "the join link's token is not this cluster's");
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
  if (state.nextTab > MAX_TAB_ID) return reject("cluster-full", `all ${MAX_TAB_ID} tab ids of this cluster were used`);
  const wanted = req.role === "watcher" ? 0 : req.vcpus;
  if (req.role === "compute" && wanted < 1) return reject("bad-message", "a compute tab must ask for at least one vCPU");
  const free = freeVcpus(state);
  if (wanted > free.length)
    return reject(
      "cluster-full",
      `the tab asks for ${wanted} vCPU(s) but only ${free.length} of the cluster's ${state.shape.totalVcpus} are free` +
        (free.length > 0 ? `; join with ${free.length} or fewer, or as a watcher` : "; join as a watcher"),
    );
  const member: Member = { tab: state.nextTab, peer: req.peer, role: req.role, vcpus: free.slice(0, wanted), build: req.build };
  const members = [...state.members, member].sort((a, b) => a.tab - b.tab);
  return { ok: true, member, state: { ...state, members, epoch: state.epoch + 1, nextTab: state.nextTab + 1 } };
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
 * ones that are gone (compared with what this tab knew), so the caller can open or drop links.
 */
export function applyRoster(
  state: RosterState,
  msg: { epoch: number; members: readonly Member[] },
): { state: RosterState; added: Member[]; removed: Member[] } {
  if (msg.epoch <= state.epoch) return { state, added: [], removed: [] };
  const before = new Map(state.members.map((m) => [m.tab, m]));
  const after = new Map(msg.members.map((m) => [m.tab, m]));
  const added = msg.members.filter((m) => !before.has(m.tab));
  const removed = state.members.filter((m) => !after.has(m.tab));
  const members = [...msg.members].sort((a, b) => a.tab - b.tab);
  return { state: { ...state, epoch: msg.epoch, members, nextTab: Math.max(state.nextTab, ...members.map((m) => m.tab + 1)) }, added, removed };
}

/** True when every vCPU of the cluster has a tab: tab 0 may boot. */
export const slicesCoverAll = (state: RosterState): boolean => freeVcpus(state).length === 0;

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
