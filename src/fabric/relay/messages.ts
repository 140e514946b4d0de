// The relay's own envelope (JSON text over one WebSocket per tab). The relay checks the cluster
// and token on "hello", then passes "send" bodies (validated signaling messages) only between
// peers of that cluster. It never looks into WebRTC traffic and refuses binary frames outright.
// A tab's "ping" (after its hello) is answered by the relay's "pong": browsers cannot see the
// WebSocket ping frames the relay sends, so this is how a tab learns its relay went silent.

import { FabricError } from "../errors.ts";
import { isClusterId, isJoinToken, isPeerId } from "../ids.ts";
import { type Address, FABRIC_VERSION, MAX_SIGNAL_CHARS, parseBody, type SignalBody } from "../messages.ts";

export { FABRIC_VERSION };

export type ClientMessage =
  /** `watchToken` (tab 0's hello only): a second token the relay admits, for watch links. */
  | { t: "hello"; cluster: string; token: string; peer: string; create: boolean; fabric: number; watchToken?: string }
  | { t: "send"; to: Address; body: SignalBody }
  /** Keepalive from the tab; the relay answers "pong". */
  | { t: "ping" };

export type RelayErrorCode =
  | "bad-message" // not JSON, not a known message, or a field is wrong
  | "binary" // a binary frame: the relay carries signaling only
  | "too-large"
  | "rate-limited"
  | "wrong-token"
  | "unknown-cluster"
  | "cluster-exists"
  | "peer-exists"
  | "cluster-full"
  | "relay-full"
  | "version-mismatch"
  | "hello-timeout"
  | "cluster-closed" // the creating tab left
  | "origin-not-allowed" // the page's Origin is not on the relay's allow-list
  | "too-many-connections" // this address already holds the relay's per-address cap of connections
  | "byte-rate-limited" // more bytes a second than the relay allows one connection
  | "slow-reader"; // the tab did not read what the relay sent it; its backlog passed the cap
export const RELAY_ERROR_CODES: readonly RelayErrorCode[] = [
  "bad-message",
  "binary",
  "too-large",
  "rate-limited",
  "wrong-token",
  "unknown-cluster",
  "cluster-exists",
  "peer-exists",
  "cluster-full",
  "relay-full",
  "version-mismatch",
  "hello-timeout",
  "cluster-closed",
  "origin-not-allowed",
  "too-many-connections",
  "byte-rate-limited",
  "slow-reader",
];

export type RelayMessage =
  /** Accepted: the peers already there, and which of them created the cluster (tab 0). */
  | { t: "ready"; peers: string[]; creator: string }
  | { t: "deliver"; from: string; body: SignalBody }
  | { t: "peer-gone"; peer: string }
  /** The answer to a tab's "ping". */
  | { t: "pong" }
  | { t: "error"; code: RelayErrorCode; detail: string };

/** The largest WebSocket message either side accepts (bytes of UTF-8 JSON). */
export const MAX_RELAY_MESSAGE_BYTES = MAX_SIGNAL_CHARS + 1024;

function fail(why: string): never {
  throw new FabricError("bad-message", `relay message: ${why}`);
}

function parseJson(text: string): Record<string, unknown> {
  if (text.length > MAX_RELAY_MESSAGE_BYTES) fail(`${text.length} characters, at most ${MAX_RELAY_MESSAGE_BYTES} allowed`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    fail("not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail("not a JSON object");
  return v as Record<string, unknown>;
}

/** Relay side: what a tab sent. */
export function parseClientMessage(text: string): ClientMessage {
  const o = parseJson(text);
  switch (o.t) {
    case "hello":
      if (!isClusterId(o.cluster)) fail("hello.cluster is not a cluster id");
      if (!isJoinToken(o.token)) fail("hello.token is not a join token");
      if (!isPeerId(o.peer)) fail("hello.peer is not a peer id");
      if (typeof o.create !== "boolean") fail("hello.create is not a boolean");
      if (typeof o.fabric !== "number" || !Number.isInteger(o.fabric)) fail("hello.fabric is not an integer");
      if (o.watchToken !== undefined && (!o.create || !isJoinToken(o.watchToken))) fail("hello.watchToken is not a join token on a creating hello");
      return { t: "hello", cluster: o.cluster, token: o.token, peer: o.peer, create: o.create, fabric: o.fabric, ...(o.watchToken !== undefined ? { watchToken: o.watchToken as string } : {}) };
    case "send":
      if (o.to !== "*" && !isPeerId(o.to)) fail('send.to is neither a peer id nor "*"');
      return { t: "send", to: o.to as Address, body: parseBody(o.body, "relay send.body") };
    case "ping":
      return { t: "ping" };
    default:
      return fail(`unknown message type ${JSON.stringify(o.t)?.slice(0, 40)}`);
  }
}

/** Tab side: what the relay sent. */
export function parseRelayMessage(text: string): RelayMessage {
  const o = parseJson(text);
  switch (o.t) {
    case "ready":
      if (!Array.isArray(o.peers) || o.peers.length > 256 || !o.peers.every(isPeerId)) fail("ready.peers is not a list of peer ids");
      if (!isPeerId(o.creator)) fail("ready.creator is not a peer id");
      return { t: "ready", peers: o.peers as string[], creator: o.creator };
    case "deliver":
      if (!isPeerId(o.from)) fail("deliver.from is not a peer id");
      return { t: "deliver", from: o.from, body: parseBody(o.body, "relay deliver.body") };
    case "peer-gone":
      if (!isPeerId(o.peer)) fail("peer-gone.peer is not a peer id");
      return { t: "peer-gone", peer: o.peer };
    case "pong":
      return { t: "pong" };
    case "error":
      if (typeof o.code !== "string" || !(RELAY_ERROR_CODES as readonly string[]).includes(o.code)) fail("error.code is unknown");
      if (typeof o.detail !== "string" || o.detail.length > 1024) fail("error.detail is not short text");
      return { t: "error", code: o.code as RelayErrorCode, detail: o.detail };
    default:
      return fail(`unknown message type ${JSON.stringify(o.t)?.slice(0, 40)}`);
  }
}
