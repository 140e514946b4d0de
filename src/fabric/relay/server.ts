// The signaling relay for tabs on different machines (Node.js, `ws`). It only passes signaling:
// a tab says hello with a cluster id and token; tab 0's hello registers the cluster, every other
// hello must present the same token. Messages then reach only peers of the same cluster. Every
// message is validated, sizes and rates (messages and bytes) are bounded, binary frames (VM
// traffic) are refused. Connections are capped per address and in all, pages of other sites are
// refused by their Origin, a reader that stops draining is dropped, and every connection is
// pinged so dead ones go. Each refusal is named: an `error` message, then the close reason.

import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Http2SecureServer } from "node:http2";
import type { Duplex } from "node:stream";
import { type AddressInfo, isIP } from "node:net";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { FabricError } from "../errors.ts";
import { tokensEqual } from "../ids.ts";
import {
  type ClientMessage,
  FABRIC_VERSION,
  MAX_RELAY_MESSAGE_BYTES,
  parseClientMessage,
  type RelayErrorCode,
  type RelayMessage,
} from "./messages.ts";

export interface RelayLimits {
  maxPeersPerCluster: number;
  maxClusters: number;
  /** Token bucket per connection: sustained messages per second and burst size. */
  messagesPerSecond: number;
  burst: number;
  /** Token bucket per connection in bytes (of received messages): sustained bytes per second and burst size. */
  bytesPerSecond: number;
  byteBurst: number;
  /** A connection that has not said hello by then is closed. */
  helloTimeoutMs: number;
  /** Connections admitted at once from one remote address (IPv6: from one /64 prefix). */
  maxConnectionsPerAddress: number;
  /** Connections admitted at once in all. */
  maxConnections: number;
  /** Bytes the relay may hold unsent for one connection; past it the reader is dropped ("slow-reader"). */
  maxBufferedBytes: number;
  /** The relay pings every connection this often (WebSocket ping frames) and cuts one that did not answer the previous ping. */
  pingIntervalMs: number;
  /** How long a refused connection may take to read its refusal and close before it is cut. */
  closeGraceMs: number;
}

/**
 * Why these numbers:
 * - 64 tabs a cluster, 1024 clusters: as before.
 * - 50 messages/s (burst 200), 64 KiB/s (burst 1 MiB): a tab's signaling is a hello, one offer or
 *   answer (an SDP of 2-6 KB, at most 32 KiB) and a few candidates per link, plus a ping every few
 *   seconds; the bursts let a tab joining a full cluster send all its offers at once.
 * - 32 connections an address: one machine (or one NAT) running many tabs, with room to spare;
 *   filling the relay then takes 16 addresses.
 * - 512 connections in all: well below the 1024 open files a process gets by default on Linux,
 *   which the page server hosting the relay also needs for its own files and sockets.
 * - 1 MiB unsent a connection: 16 messages of the largest size; a reader that drains keeps this
 *   near 0, since the kernel's socket buffers take bursts first.
 * - ping every 15 s: a dead tab is noticed within 30 s, and idle connections stay open through
 *   NATs and proxies that drop idle TCP after 30-60 s.
 * - 2 s to read a refusal: plenty on any link; a client that does not close is cut.
 */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxPeersPerCluster: 64,
  maxClusters: 1024,
  messagesPerSecond: 50,
  burst: 200,
  bytesPerSecond: 64 * 1024,
  byteBurst: 1024 * 1024,
  helloTimeoutMs: 10_000,
  maxConnectionsPerAddress: 32,
  maxConnections: 512,
  maxBufferedBytes: 1024 * 1024,
  pingIntervalMs: 15_000,
  closeGraceMs: 2_000,
});

/** The smallest value each limit may take (a byte budget must hold the largest message). */
const LIMIT_MIN: Record<keyof RelayLimits, { min: number; integer: boolean }> = {
  maxPeersPerCluster: { min: 1, integer: true },
  maxClusters: { min: 1, integer: true },
  messagesPerSecond: { min: Number.MIN_VALUE, integer: false },
  burst: { min: 1, integer: true },
  bytesPerSecond: { min: Number.MIN_VALUE, integer: false },
  byteBurst: { min: MAX_RELAY_MESSAGE_BYTES, integer: true },
  helloTimeoutMs: { min: 1, integer: true },
  maxConnectionsPerAddress: { min: 1, integer: true },
  maxConnections: { min: 1, integer: true },
  maxBufferedBytes: { min: MAX_RELAY_MESSAGE_BYTES, integer: true },
  pingIntervalMs: { min: 1, integer: true },
  closeGraceMs: { min: 1, integer: true },
};

/** The limits with defaults filled in; a limit that is unknown or out of range throws a RangeError naming it. */
export function relayLimits(over: Partial<RelayLimits> = {}): RelayLimits {
  const out: RelayLimits = { ...DEFAULT_RELAY_LIMITS };
  for (const [name, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const rule = LIMIT_MIN[name as keyof RelayLimits];
    if (!rule) throw new RangeError(`relay: unknown limit ${JSON.stringify(name)} (known: ${Object.keys(LIMIT_MIN).join(", ")})`);
    if (typeof value !== "number" || !Number.isFinite(value) || value < rule.min || (rule.integer && !Number.isInteger(value)))
      throw new RangeError(`relay: limit ${name} must be ${rule.integer ? "an integer" : "a number"} of at least ${rule.min === Number.MIN_VALUE ? "just above 0" : rule.min}, not ${String(value)}`);
    out[name as keyof RelayLimits] = value;
  }
  return out;
}

/**
 * Which browser pages may use the relay, by the `Origin` header of their WebSocket request. Each
 * entry is one of:
 * - an origin, `https://host:port` (scheme, host and port, nothing more);
 * - `"self"`: pages of the server the relay is attached to (`attachRelay`, the Vite plugin): the
 *   Origin's host and port equal the request's `Host`, and that host is one the page server answers
 *   to (an IP address, `localhost`, or in `allowedHosts`, as Vite decides; over TLS any host), so a
 *   DNS-rebinding name cannot pass for it;
 * - `"loopback"`: pages served from this machine (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`);
 * - `"*"`: any page.
 */
export type OriginRule = string;

export interface RelayOptions {
  host?: string;
  port?: number;
  limits?: Partial<RelayLimits>;
  /**
   * Browser pages that may use the relay (see `OriginRule`). Default: `["loopback"]` for
   * `startRelay`, `["self"]` for `attachRelay`. A request without an `Origin` header is always let
   * through (see `originRefusal`).
   */
  allowedOrigins?: readonly OriginRule[];
  /** For `"self"`: host names besides IP addresses and `localhost` that the page server answers to (Vite's `allowedHosts`). */
  allowedHosts?: readonly string[] | true;
  /** Called for each refused message or connection (the start script logs them). */
  log?: (line: string) => void;
  /** The interval timer the keepalive runs on (tests drive it by hand). */
  timers?: RelayTimers;
}

export interface RelayTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}
const DEFAULT_TIMERS: RelayTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms).unref(), // the keepalive alone does not keep the process up
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

export interface RelayServer {
  /** ws://host:port/ */
  readonly url: string;
  readonly port: number;
  stats(): { clusters: number; peers: number };
  /** Connections admitted now, in all and by address (refused ones are not counted). */
  connections(): { total: number; byAddress: Record<string, number> };
  close(): Promise<void>;
}

interface Peer {
  id: string;
  ws: WebSocket;
}

interface Cluster {
  token: string;
  /** The watch link's token, admitted as well (tab 0 decides what a watcher may be). */
  watchToken?: string;
  creator: string;
  peers: Map<string, Peer>;
}

/** One admitted connection. */
interface Conn {
  ws: WebSocket;
  who: string;
  address: string;
  joined: { cluster: string; peer: Peer } | undefined;
  /** Answered the last ping (a pong frame: browsers send it by themselves). */
  alive: boolean;
  /** Being closed by the relay: nothing more is sent to it or taken from it. */
  refused: boolean;
}

// Policy violation: the close code for every refusal.
const CLOSE_POLICY = 1008;

const SPECIAL_ORIGINS = new Set(["self", "loopback", "*"]);

/** Checks the allow-list; each origin is kept in its normal form (`new URL(o).origin`). Throws a RangeError naming the bad entry. */
export function originRules(rules: readonly OriginRule[]): string[] {
  if (!Array.isArray(rules)) throw new RangeError("relay: allowedOrigins must be a list of origins");
  return rules.map((r) => {
    if (typeof r !== "string") throw new RangeError(`relay: allowedOrigins entry ${String(r)} is not a string`);
    if (SPECIAL_ORIGINS.has(r)) return r;
    let u: URL | undefined;
    try {
      u = new URL(r);
    } catch {
      u = undefined;
    }
    const trimmed = r.endsWith("/") ? r.slice(0, -1) : r;
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || u.origin.toLowerCase() !== trimmed.toLowerCase())
      throw new RangeError(`relay: allowedOrigins entry ${JSON.stringify(r)} is not an origin like https://host:5173 (nor "self", "loopback" or "*")`);
    return u.origin;
  });
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "[::1]") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

/** Does the page server answer to this Host (Vite's rule: IP addresses, localhost, or listed; `.example.com` covers its subdomains)? */
function hostAnswered(hostname: string, allowedHosts: readonly string[] | true): boolean {
  if (allowedHosts === true) return true;
  const h = hostname.toLowerCase();
  if (h.startsWith("[") || isIP(h) !== 0 || h === "localhost" || h.endsWith(".localhost")) return true;
  return allowedHosts.some((a) => {
    const x = a.toLowerCase();
    return x === h || (x.startsWith(".") && (h === x.slice(1) || h.endsWith(x)));
  });
}

/**
 * Why the page at `origin` may not use this relay, or undefined if it may.
 *
 * A request without an `Origin` header is let through: browsers send one on every WebSocket
 * request, so its absence means a client that is not a browser page (a Node.js tab in the tests, a
 * tool). Such a client can write any Origin it likes, so refusing it would protect nothing; the
 * check exists to keep pages of other sites, running in visitors' browsers, off this relay. What
 * protects a cluster from anyone who is not a browser page is its token.
 */
export function originRefusal(origin: string | undefined, req: IncomingMessage, rules: readonly string[], allowedHosts: readonly string[] | true): string | undefined {
  if (origin === undefined) return undefined;
  let page: URL | undefined;
  try {
    page = new URL(origin);
  } catch {
    page = undefined; // "null" (a sandboxed frame, a file:// page) and garbage
  }
  const shown = JSON.stringify(origin.slice(0, 200));
  if (rules.includes("*")) return undefined;
  if (page && (page.protocol === "http:" || page.protocol === "https:")) {
    if (rules.includes(page.origin)) return undefined;
    if (rules.includes("loopback") && isLoopbackHost(page.hostname)) return undefined;
    if (rules.includes("self")) {
      const hostHeader = req.headers.host;
      const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
      if (hostHeader !== undefined) {
        let served: URL | undefined;
        try {
          served = new URL(`${page.protocol}//${hostHeader}`);
        } catch {
          served = undefined;
        }
        if (served && served.host === page.host && (tls || hostAnswered(served.hostname, allowedHosts))) return undefined;
      }
    }
  }
  const onlySelf = rules.length === 1 && rules[0] === "self";
  return onlySelf
    ? `this relay serves only the pages of its own server, and the page at ${shown} is another site`
    : `pages from ${shown} may not use this relay (its operator can allow them: scripts/relay.ts --allow-origin <origin>)`;
}

/** The key connections are counted under: the IPv4 address, or the /64 prefix of an IPv6 one (one host commonly holds a whole /64). */
export function addressKey(remote: string | undefined): string {
  if (!remote) return "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return mapped[1]!;
  const bare = remote.split("%")[0]!;
  if (isIP(bare) !== 6) return remote;
  const groups = (part: string) => (part === "" ? [] : part.split(":")).flatMap((g) => (g.includes(".") ? ["0", "0"] : [g]));
  const [head, tail] = bare.includes("::") ? (bare.split("::") as [string, string]) : [bare, undefined];
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return `${all
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

interface HubOptions {
  limits: RelayLimits;
  origins: string[];
  allowedHosts: readonly string[] | true;
  log: (line: string) => void;
  timers: RelayTimers;
}

type HubInputs = Pick<RelayOptions, "limits" | "log" | "allowedOrigins" | "allowedHosts" | "timers">;

function hubOptions(opts: HubInputs, defaultOrigins: readonly OriginRule[]): HubOptions {
  const allowedHosts = opts.allowedHosts ?? [];
  if (allowedHosts !== true && (!Array.isArray(allowedHosts) || !allowedHosts.every((h) => typeof h === "string" && h.length > 0)))
    throw new RangeError("relay: allowedHosts must be true or a list of host names");
  return {
    limits: relayLimits(opts.limits),
    origins: originRules(opts.allowedOrigins ?? defaultOrigins),
    allowedHosts,
    log: opts.log ?? (() => {}),
    timers: opts.timers ?? DEFAULT_TIMERS,
  };
}

interface Hub {
  stats(): { clusters: number; peers: number };
  connections(): { total: number; byAddress: Record<string, number> };
  stop(): void;
}

/** The relay's logic over a WebSocketServer, however that server receives its connections. */
function relayHub(wss: WebSocketServer, opts: HubOptions): Hub {
  const { limits, log } = opts;
  const clusters = new Map<string, Cluster>();
  const conns = new Map<WebSocket, Conn>();
  const perAddress = new Map<string, number>();
  /** Connections refused and not yet closed; bounded too, so a flood of refused ones cannot pile up. */
  const refusing = new Set<WebSocket>();

  /** Sends without looking at the backlog (refusals: the connection closes anyway). */
  const sendRaw = (ws: WebSocket, m: RelayMessage) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
  };
  /** Sends to a connection and drops it if it has stopped reading what it is sent. */
  const sendTo = (ws: WebSocket, m: RelayMessage) => {
    const conn = conns.get(ws);
    if (conn?.refused || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(m));
    if (conn && ws.bufferedAmount > limits.maxBufferedBytes) {
      refuse(ws, "slow-reader", `the tab did not read what the relay sent it: more than ${limits.maxBufferedBytes} bytes waited unsent`, conn.who);
      if (conn.joined) leave(conn.joined.cluster, conn.joined.peer); // the others hear of it now
    }
  };
  /** Tells the client why in an `error` message and the close reason, and cuts it if it does not close in time. */
  const refuse = (ws: WebSocket, code: RelayErrorCode, detail: string, who: string) => {
    const conn = conns.get(ws);
    if (conn) {
      if (conn.refused) return;
      conn.refused = true;
    }
    log(`refused ${who}: ${code}: ${detail}`);
    sendRaw(ws, { t: "error", code, detail });
    closeSoon(ws, CLOSE_POLICY, code);
  };
  /** Starts the closing handshake; a client that does not finish it within closeGraceMs is cut. */
  const closeSoon = (ws: WebSocket, code: number, reason: string) => {
    ws.close(code, reason);
    const cut = setTimeout(() => ws.terminate(), limits.closeGraceMs);
    cut.unref?.();
    ws.once("close", () => clearTimeout(cut));
  };
  /** Refuses a connection that is not admitted; past as many as could be admitted, cuts it without a word. */
  const turnAway = (ws: WebSocket, code: RelayErrorCode, detail: string, who: string) => {
    if (refusing.size >= limits.maxConnections) {
      log(`cut ${who}: ${code}: ${refusing.size} refused connections are still closing`);
      ws.terminate();
      return;
    }
    refusing.add(ws);
    ws.once("close", () => refusing.delete(ws));
    refuse(ws, code, detail, who);
  };

  // Each tick cuts the connections that did not answer the previous tick's ping, and pings the rest.
  const keepalive = opts.timers.setInterval(() => {
    for (const c of [...conns.values()]) {
      if (!c.alive) {
        log(`cut ${c.who}: no answer to the relay's ping within ${limits.pingIntervalMs} ms (keepalive)`);
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.ws.ping();
      } catch {
        // not open any more: its close event follows
      }
    }
  }, limits.pingIntervalMs);

  wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
    const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    ws.on("error", (e) => log(`connection ${who}: ${e.message}`));
    const address = addressKey(req.socket.remoteAddress);
    // The Origin and the caps are checked on the upgraded connection, not by failing the HTTP
    // upgrade: a browser shows a page only "closed, 1006" for a failed upgrade, whatever the
    // status and body, while an `error` message and a close reason reach it. The refused
    // connection takes nothing from the caps, and at most closeGraceMs (and maxConnections of them).
    const originWhy = originRefusal(req.headers.origin, req, opts.origins, opts.allowedHosts);
    if (originWhy) return turnAway(ws, "origin-not-allowed", originWhy, who);
    if (conns.size >= limits.maxConnections)
      return turnAway(ws, "relay-full", `the relay already has ${limits.maxConnections} connections open (its limit); try again later`, who);
    const fromHere = perAddress.get(address) ?? 0;
    if (fromHere >= limits.maxConnectionsPerAddress)
      return turnAway(ws, "too-many-connections", `${address} already has ${fromHere} connections open to this relay (its limit per address); close other tabs or try again later`, who);

    const conn: Conn = { ws, who, address, joined: undefined, alive: true, refused: false };
    conns.set(ws, conn);
    perAddress.set(address, fromHere + 1);
    let tokens = limits.burst;
    let byteTokens = limits.byteBurst;
    let refilledAt = Date.now();
    const helloTimer = setTimeout(() => refuse(ws, "hello-timeout", `no hello within ${limits.helloTimeoutMs} ms`, who), limits.helloTimeoutMs);

    ws.on("pong", () => (conn.alive = true));
    ws.on("message", (data: RawData, isBinary: boolean) => {
      // After a refusal, frames already on the way still arrive: none is looked at.
      if (conn.refused || ws.readyState !== WebSocket.OPEN) return;
      const now = Date.now();
      const elapsed = (now - refilledAt) / 1000;
      tokens = Math.min(limits.burst, tokens + elapsed * limits.messagesPerSecond);
      byteTokens = Math.min(limits.byteBurst, byteTokens + elapsed * limits.bytesPerSecond);
      refilledAt = now;
      if (tokens < 1) return refuse(ws, "rate-limited", `more than ${limits.messagesPerSecond} messages a second`, who);
      tokens -= 1;
      const bytes = rawLength(data);
      if (byteTokens < bytes) return refuse(ws, "byte-rate-limited", `more than ${limits.bytesPerSecond} bytes a second (after a burst of ${limits.byteBurst})`, who);
      byteTokens -= bytes;
      if (isBinary)
        return refuse(ws, "binary", "the relay carries signaling only (JSON text), never VM traffic", who);
      let msg: ClientMessage;
      try {
        msg = parseClientMessage(rawText(data));
      } catch (e) {
        return refuse(ws, "bad-message", e instanceof FabricError ? e.message : String(e), who);
      }
      if (msg.t === "hello") {
        if (conn.joined) return refuse(ws, "bad-message", "a second hello on one connection", who);
        clearTimeout(helloTimer);
        conn.joined = hello(ws, msg, who);
        return;
      }
      if (!conn.joined) return refuse(ws, "bad-message", "the first message must be hello", who);
      if (msg.t === "ping") return sendTo(ws, { t: "pong" });
      const joined = conn.joined;
      const cluster = clusters.get(joined.cluster);
      if (!cluster) return;
      const out: RelayMessage = { t: "deliver", from: joined.peer.id, body: msg.body };
      if (msg.to === "*") {
        for (const p of [...cluster.peers.values()]) if (p.id !== joined.peer.id) sendTo(p.ws, out);
      } else if (msg.to !== joined.peer.id) {
        const p = cluster.peers.get(msg.to);
        if (p) sendTo(p.ws, out); // a peer that left meanwhile just misses it
      }
    });

    ws.on("close", () => {
      clearTimeout(helloTimer);
      conns.delete(ws);
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n > 0) perAddress.set(address, n);
      else perAddress.delete(address);
      if (conn.joined) leave(conn.joined.cluster, conn.joined.peer);
    });
  });
  wss.on("close", () => opts.timers.clearInterval(keepalive));

  function hello(ws: WebSocket, m: Extract<ClientMessage, { t: "hello" }>, who: string): { cluster: string; peer: Peer } | undefined {
    if (m.fabric !== FABRIC_VERSION) {
      refuse(ws, "version-mismatch", `the relay speaks fabric v${FABRIC_VERSION}, the tab v${m.fabric}`, who);
      return undefined;
    }
    let cluster = clusters.get(m.cluster);
    if (m.create) {
      if (cluster) return void refuse(ws, "cluster-exists", "a cluster with this id is already registered", who);
      if (clusters.size >= limits.maxClusters) return void refuse(ws, "relay-full", `the relay already serves ${limits.maxClusters} clusters`, who);
      cluster = { token: m.token, ...(m.watchToken ? { watchToken: m.watchToken } : {}), creator: m.peer, peers: new Map() };
      clusters.set(m.cluster, cluster);
    } else {
      if (!cluster) return void refuse(ws, "unknown-cluster", "no cluster with this id on the relay (is its first tab still open?)", who);
      // Either token lets a tab talk to tab 0; which role it may take is tab 0's to decide.
      if (!tokensEqual(m.token, cluster.token) && !(cluster.watchToken !== undefined && tokensEqual(m.token, cluster.watchToken)))
        return void refuse(ws, "wrong-token", "the token is not this cluster's", who);
      if (cluster.peers.has(m.peer)) return void refuse(ws, "peer-exists", "this peer id is already connected", who);
      if (cluster.peers.size >= limits.maxPeersPerCluster)
        return void refuse(ws, "cluster-full", `the relay allows ${limits.maxPeersPerCluster} tabs per cluster`, who);
    }
    const peer: Peer = { id: m.peer, ws };
    sendTo(ws, { t: "ready", peers: [...cluster.peers.keys()], creator: cluster.creator });
    cluster.peers.set(m.peer, peer);
    return { cluster: m.cluster, peer };
  }

  function leave(clusterId: string, peer: Peer): void {
    const cluster = clusters.get(clusterId);
    if (!cluster || cluster.peers.get(peer.id) !== peer) return;
    cluster.peers.delete(peer.id);
    for (const p of [...cluster.peers.values()]) sendTo(p.ws, { t: "peer-gone", peer: peer.id });
    if (peer.id === cluster.creator) {
      // Tab 0 is gone, so is the cluster: free its id and tell the others why signaling ends.
      clusters.delete(clusterId);
      for (const p of cluster.peers.values()) {
        sendRaw(p.ws, { t: "error", code: "cluster-closed", detail: "the cluster's first tab (tab 0) left" });
        closeSoon(p.ws, 1000, "cluster-closed");
      }
    }
  }

  return {
    stats: () => ({ clusters: clusters.size, peers: [...clusters.values()].reduce((n, c) => n + c.peers.size, 0) }),
    connections: () => ({ total: conns.size, byAddress: Object.fromEntries(perAddress) }),
    stop: () => opts.timers.clearInterval(keepalive),
  };
}

/** A relay on its own port (scripts/relay.ts); give `server` (e.g. an https.Server) for wss://. Allows loopback pages unless `allowedOrigins` says otherwise. */
export async function startRelay(opts: RelayOptions & { server?: HttpServer } = {}): Promise<RelayServer> {
  const settings = hubOptions(opts, ["loopback"]); // throws on a bad option before anything listens
  const own = opts.server;
  const wss = own
    ? new WebSocketServer({ server: own, maxPayload: MAX_RELAY_MESSAGE_BYTES })
    : new WebSocketServer({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0, maxPayload: MAX_RELAY_MESSAGE_BYTES });
  const hub = relayHub(wss, settings);
  if (own) {
    if (!own.listening) own.listen(opts.port ?? 0, opts.host ?? "127.0.0.1");
    if (!own.listening) await new Promise<void>((resolve, reject) => (own.once("listening", resolve), own.once("error", reject)));
  } else {
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
  }
  const address = (own ? own.address() : wss.address()) as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const scheme = own && "setSecureContext" in own ? "wss" : "ws";
  return {
    url: `${scheme}://${host}:${address.port}/`,
    port: address.port,
    stats: hub.stats,
    connections: hub.connections,
    close: () =>
      new Promise<void>((resolve) => {
        hub.stop();
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => (own ? own.close(() => resolve()) : resolve()));
      }),
  };
}

/** Path under which the page server offers the relay (same origin, same certificate). */
export const RELAY_PATH = "/fabric-relay";

/**
 * Serves the relay on an existing HTTP(S) server at `path`, next to the page (the Vite plugin
 * uses this): tabs on other machines then need no second port and no second certificate.
 * Other upgrade requests (Vite's HMR) are left alone. Allows only the server's own pages
 * (`"self"`) unless `allowedOrigins` says otherwise.
 */
export function attachRelay(
  server: HttpServer | Http2SecureServer,
  opts: HubInputs & { path?: string } = {},
): { stats(): { clusters: number; peers: number }; connections(): { total: number; byAddress: Record<string, number> }; close(): void } {
  const path = opts.path ?? RELAY_PATH;
  const settings = hubOptions(opts, ["self"]);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_RELAY_MESSAGE_BYTES });
  const hub = relayHub(wss, settings);
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? "/", "http://x").pathname !== path) return;
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  };
  // Both server kinds emit "upgrade" with these arguments (HTTP/1.1 upgrades).
  const emitter = server as HttpServer;
  emitter.on("upgrade", onUpgrade);
  return {
    stats: hub.stats,
    connections: hub.connections,
    close: () => {
      emitter.off("upgrade", onUpgrade);
      hub.stop();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
