// Signaling messages: what tabs say to each other before (and beside) their WebRTC links, over a
// BroadcastChannel or the WebSocket relay. JSON, because it is small, rare, and SDP is text.
// Every message from outside goes through parseEnvelope / parseBody before anything reads it.

import { FabricError, JOIN_REJECT_CODES, type JoinRejectCode } from "./errors.ts";
import { isClusterId, isJoinToken, isPeerId } from "./ids.ts";

/**
 * Bumped when a signaling or link message changes shape or meaning (2: a member's id is `tab`, the
 * shape's limit `maxTabs`; 3: control messages on links (rosters, `ready`), `roster.gone`, tab ids
 * reused).
 */
export const FABRIC_VERSION = 3;

/** Largest signaling message (JSON text, UTF-16 code units). An offer SDP with candidates is ~2-6 KB. */
export const MAX_SIGNAL_CHARS = 64 * 1024;
export const MAX_TAB_ID = 254; // tab ids are one byte on the VM wire; 255 stays free
export const MAX_CLUSTER_VCPUS = 255;
const MAX_SDP_CHARS = 32 * 1024;
const MAX_TEXT_CHARS = 256;
/** Longest reason given for a member's departure (`roster.gone[].reason`). */
export const MAX_REASON_CHARS = 512;

/** Tab 0 creates the cluster and hosts the devices and boot CPU; watchers host no vCPU. */
export type Role = "host" | "compute" | "watcher";
export const ROLES: readonly Role[] = ["host", "compute", "watcher"];

export interface Member {
  tab: number;
  peer: string;
  role: Role;
  /** vCPU ids this tab hosts (its slice); empty for watchers. */
  vcpus: number[];
  build: string;
}

/** The cluster's fixed shape, chosen by tab 0 at creation. */
export interface ClusterShape {
  totalVcpus: number;
  maxTabs: number;
  /** The VM protocol version every tab must speak (opaque to the fabric). */
  protocol: number;
}

/** What simple-peer hands to `signal()`; only data-channel kinds are accepted. */
export type SignalData =
  | { type: "offer" | "answer"; sdp: string }
  | { type: "candidate"; candidate: { candidate: string; sdpMLineIndex?: number | null; sdpMid?: string | null; usernameFragment?: string | null } }
  | { type: "renegotiate"; renegotiate: true };

export type SignalBody =
  | { t: "join"; token: string; role: "compute" | "watcher"; vcpus: number; fabric: number; protocol: number; build: string }
  | { t: "welcome"; tab: number; shape: ClusterShape; epoch: number; members: Member[] }
  | { t: "reject"; code: JoinRejectCode; detail: string }
  /** Tab 0's roster; `gone` names the members this epoch removed and why (evicted, link closed, left). */
  | { t: "roster"; epoch: number; members: Member[]; gone?: Departure[] }
  /** WebRTC offer/answer/candidate for the link between the sender (tab `tab`) and the receiver. */
  | { t: "signal"; tab: number; data: SignalData }
  /** The sender is going away (sent on page hide, so others need not wait for a timeout). */
  | { t: "leave"; tab: number; reason: string };

export type SignalKind = SignalBody["t"];

/** A member that a roster removed: who (tab and peer, since tab ids are reused) and why. */
export interface Departure {
  tab: number;
  peer: string;
  reason: string;
}

/**
 * Fabric messages carried on a link itself (not through signaling), so membership keeps working
 * when signaling is gone: tab 0's rosters; a joiner's `ready` to tab 0 (its links to every member
 * in its welcome are open); a member's `link-lost` to tab 0 (its link to another member closed,
 * so the mesh is broken and tab 0 removes that member).
 */
export type LinkControl = Extract<SignalBody, { t: "roster" }> | { t: "ready" } | { t: "link-lost"; tab: number; peer: string; reason: string };

/** "*" addresses every peer of the cluster. */
export type Address = string | "*";

/** One BroadcastChannel message (the relay has its own envelope, see relay/messages.ts). */
export interface Envelope {
  cluster: string;
  from: string;
  to: Address;
  body: SignalBody;
}

// ---------------------------------------------------------------- validation

class Check {
  constructor(private readonly where: string) {}
  fail(why: string): never {
    throw new FabricError("bad-message", `${this.where}: ${why}`);
  }
  obj(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(`${field} is not an object`);
    return v as Record<string, unknown>;
  }
  int(v: unknown, field: string, min: number, max: number): number {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
      this.fail(`${field} is ${JSON.stringify(v)}, expected an integer in ${min}..${max}`);
    return v;
  }
  str(v: unknown, field: string, maxChars: number): string {
    if (typeof v !== "string") this.fail(`${field} is not a string`);
    if (v.length > maxChars) this.fail(`${field} has ${v.length} characters, at most ${maxChars} allowed`);
    return v;
  }
  oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[]): T {
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v))
      this.fail(`${field} is ${JSON.stringify(v)}, expected one of ${allowed.join(", ")}`);
    return v as T;
  }
  optStrOrNull(v: unknown, field: string, maxChars: number): string | null | undefined {
    return v === undefined || v === null ? (v as null | undefined) : this.str(v, field, maxChars);
  }
}

function parseMember(c: Check, v: unknown, i: number): Member {
  const o = c.obj(v, `members[${i}]`);
  const role = c.oneOf(o.role, `members[${i}].role`, ROLES);
  if (!Array.isArray(o.vcpus) || o.vcpus.length > MAX_CLUSTER_VCPUS) c.fail(`members[${i}].vcpus is not a list of vCPU ids`);
  const vcpus = o.vcpus.map((x, j) => c.int(x, `members[${i}].vcpus[${j}]`, 0, MAX_CLUSTER_VCPUS - 1));
  if (!isPeerId(o.peer)) c.fail(`members[${i}].peer is not a peer id`);
  return { tab: c.int(o.tab, `members[${i}].tab`, 0, MAX_TAB_ID), peer: o.peer, role, vcpus, build: c.str(o.build, `members[${i}].build`, MAX_TEXT_CHARS) };
}

function parseMembers(c: Check, v: unknown): Member[] {
  if (!Array.isArray(v) || v.length > MAX_TAB_ID + 1) c.fail("members is not a list of at most 255 members");
  const members = v.map((m, i) => parseMember(c, m, i));
  const tabs = new Set(members.map((m) => m.tab));
  if (tabs.size !== members.length) c.fail("members lists a tab id twice");
  const vcpus = members.flatMap((m) => m.vcpus);
  if (new Set(vcpus).size !== vcpus.length) c.fail("members gives one vCPU to two tabs");
  return members;
}

function parseGone(c: Check, v: unknown): Departure[] {
  if (!Array.isArray(v) || v.length > MAX_TAB_ID + 1) c.fail("roster.gone is not a list of at most 255 departures");
  return v.map((x, i) => {
    const o = c.obj(x, `roster.gone[${i}]`);
    if (!isPeerId(o.peer)) c.fail(`roster.gone[${i}].peer is not a peer id`);
    return { tab: c.int(o.tab, `roster.gone[${i}].tab`, 0, MAX_TAB_ID), peer: o.peer, reason: c.str(o.reason, `roster.gone[${i}].reason`, MAX_REASON_CHARS) };
  });
}

function parseRoster(c: Check, o: Record<string, unknown>): Extract<SignalBody, { t: "roster" }> {
  const roster: Extract<SignalBody, { t: "roster" }> = { t: "roster", epoch: c.int(o.epoch, "roster.epoch", 0, Number.MAX_SAFE_INTEGER), members: parseMembers(c, o.members) };
  if (o.gone !== undefined) roster.gone = parseGone(c, o.gone);
  return roster;
}

function parseSignalData(c: Check, v: unknown): SignalData {
  const o = c.obj(v, "data");
  const type = c.oneOf(o.type, "data.type", ["offer", "answer", "candidate", "renegotiate"] as const);
  switch (type) {
    case "offer":
    case "answer":
      return { type, sdp: c.str(o.sdp, "data.sdp", MAX_SDP_CHARS) };
    case "candidate": {
      const cand = c.obj(o.candidate, "data.candidate");
      const candidate: Extract<SignalData, { type: "candidate" }>["candidate"] = {
        candidate: c.str(cand.candidate, "data.candidate.candidate", 1024),
      };
      if (cand.sdpMLineIndex !== undefined && cand.sdpMLineIndex !== null)
        candidate.sdpMLineIndex = c.int(cand.sdpMLineIndex, "data.candidate.sdpMLineIndex", 0, 255);
      const mid = c.optStrOrNull(cand.sdpMid, "data.candidate.sdpMid", 64);
      if (mid !== undefined) candidate.sdpMid = mid;
      const ufrag = c.optStrOrNull(cand.usernameFragment, "data.candidate.usernameFragment", 256);
      if (ufrag !== undefined) candidate.usernameFragment = ufrag;
      return { type, candidate };
    }
    case "renegotiate":
      if (o.renegotiate !== true) c.fail("data.renegotiate must be true");
      return { type, renegotiate: true };
  }
}

/** Validates a signaling body; the result is a fresh object holding only known fields. */
export function parseBody(v: unknown, where = "signaling message"): SignalBody {
  const c: Check = new Check(where);
  const o = c.obj(v, "body");
  const t = c.oneOf(o.t, "body.t", ["join", "welcome", "reject", "roster", "signal", "leave"] as const);
  switch (t) {
    case "join":
      if (!isJoinToken(o.token)) c.fail("join.token is not a join token");
      return {
        t,
        token: o.token,
        role: c.oneOf(o.role, "join.role", ["compute", "watcher"] as const),
        vcpus: c.int(o.vcpus, "join.vcpus", 0, MAX_CLUSTER_VCPUS),
        fabric: c.int(o.fabric, "join.fabric", 0, 0xffff),
        protocol: c.int(o.protocol, "join.protocol", 0, 0xffff),
        build: c.str(o.build, "join.build", MAX_TEXT_CHARS),
      };
    case "welcome": {
      const s = c.obj(o.shape, "welcome.shape");
      return {
        t,
        tab: c.int(o.tab, "welcome.tab", 1, MAX_TAB_ID),
        shape: {
          totalVcpus: c.int(s.totalVcpus, "welcome.shape.totalVcpus", 1, MAX_CLUSTER_VCPUS),
          maxTabs: c.int(s.maxTabs, "welcome.shape.maxTabs", 1, MAX_TAB_ID + 1),
          protocol: c.int(s.protocol, "welcome.shape.protocol", 0, 0xffff),
        },
        epoch: c.int(o.epoch, "welcome.epoch", 0, Number.MAX_SAFE_INTEGER),
        members: parseMembers(c, o.members),
      };
    }
    case "reject":
      return { t, code: c.oneOf(o.code, "reject.code", JOIN_REJECT_CODES), detail: c.str(o.detail, "reject.detail", 1024) };
    case "roster":
      return parseRoster(c, o);
    case "signal":
      return { t, tab: c.int(o.tab, "signal.tab", 0, MAX_TAB_ID), data: parseSignalData(c, o.data) };
    case "leave":
      return { t, tab: c.int(o.tab, "leave.tab", 0, MAX_TAB_ID), reason: c.str(o.reason, "leave.reason", MAX_TEXT_CHARS) };
  }
}

/** Validates a control message that came on a link (decoded from JSON by link-codec.ts). */
export function parseLinkControl(v: unknown): LinkControl {
  const c: Check = new Check("link control message");
  const o = c.obj(v, "body");
  const t = c.oneOf(o.t, "body.t", ["roster", "ready", "link-lost"] as const);
  switch (t) {
    case "ready":
      return { t };
    case "roster":
      return parseRoster(c, o);
    case "link-lost":
      if (!isPeerId(o.peer)) c.fail("link-lost.peer is not a peer id");
      return { t, tab: c.int(o.tab, "link-lost.tab", 0, MAX_TAB_ID), peer: o.peer, reason: c.str(o.reason, "link-lost.reason", MAX_REASON_CHARS) };
  }
}

/** Validates a BroadcastChannel message (structured-clone data, so the size is measured as JSON). */
export function parseEnvelope(v: unknown): Envelope {
  const c: Check = new Check("BroadcastChannel message");
  const o = c.obj(v, "message");
  let size = 0;
  try {
    size = JSON.stringify(v).length;
  } catch {
    c.fail("not JSON data");
  }
  if (size > MAX_SIGNAL_CHARS) c.fail(`${size} characters, at most ${MAX_SIGNAL_CHARS} allowed`);
  if (!isClusterId(o.cluster)) c.fail("cluster is not a cluster id");
  if (!isPeerId(o.from)) c.fail("from is not a peer id");
  if (o.to !== "*" && !isPeerId(o.to)) c.fail('to is neither a peer id nor "*"');
  return { cluster: o.cluster, from: o.from, to: o.to as Address, body: parseBody(o.body, "BroadcastChannel message") };
}
