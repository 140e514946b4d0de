// The signaling relay for tabs on different machines (Node.js, `ws`). It only passes signaling:
// a tab says hello with a cluster id and token; tab 0's hello registers the cluster, every other
// hello must present the same token. Messages then reach only peers of the same cluster. Every
// message is validated, sizes and rates are bounded, binary frames (VM traffic) are refused.

import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Http2SecureServer } from "node:http2";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
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
  /** A connection that has not said hello by then is closed. */
  helloTimeoutMs: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxPeersPerCluster: 64,
  maxClusters: 1024,
  messagesPerSecond: 50,
  burst: 200,
  helloTimeoutMs: 10_000,
};

export interface RelayOptions {
  host?: string;
  port?: number;
  limits?: Partial<RelayLimits>;
  /** Called for each refused message or connection (the start script logs them). */
  log?: (line: string) => void;
}

export interface RelayServer {
  /** ws://host:port/ */
  readonly url: string;
  readonly port: number;
  stats(): { clusters: number; peers: number };
  close(): Promise<void>;
}

interface Peer {
  id: string;
  ws: WebSocket;
}

interface Cluster {
  token: string;
  creator: string;
  peers: Map<string, Peer>;
}

// Policy violation: the close code for every refusal.
const CLOSE_POLICY = 1008;

/** The relay's logic over a WebSocketServer, however that server receives its connections. */
function relayHub(wss: WebSocketServer, opts: Pick<RelayOptions, "limits" | "log">): { stats(): { clusters: number; peers: number } } {
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS, ...opts.limits };
  const log = opts.log ?? (() => {});
  const clusters = new Map<string, Cluster>();

  const sendTo = (ws: WebSocket, m: RelayMessage) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
  };
  const refuse = (ws: WebSocket, code: RelayErrorCode, detail: string, who: string) => {
    log(`refused ${who}: ${code}: ${detail}`);
    sendTo(ws, { t: "error", code, detail });
    ws.close(CLOSE_POLICY, code);
  };

  wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
    const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    let joined: { cluster: string; peer: Peer } | undefined;
    let tokens = limits.burst;
    let refilledAt = Date.now();
    const helloTimer = setTimeout(() => refuse(ws, "hello-timeout", `no hello within ${limits.helloTimeoutMs} ms`, who), limits.helloTimeoutMs);

    ws.on("message", (data: RawData, isBinary: boolean) => {
      const now = Date.now();
      tokens = Math.min(limits.burst, tokens + ((now - refilledAt) / 1000) * limits.messagesPerSecond);
      refilledAt = now;
      if (tokens < 1) return refuse(ws, "rate-limited", `more than ${limits.messagesPerSecond} messages a second`, who);
      tokens -= 1;
      if (isBinary)
        return refuse(ws, "binary", "the relay carries signaling only (JSON text), never VM traffic", who);
      let msg: ClientMessage;
      try {
        msg = parseClientMessage(rawText(data));
      } catch (e) {
        return refuse(ws, "bad-message", e instanceof FabricError ? e.message : String(e), who);
      }
      if (msg.t === "hello") {
        if (joined) return refuse(ws, "bad-message", "a second hello on one connection", who);
        clearTimeout(helloTimer);
        joined = hello(ws, msg, who);
        return;
      }
      if (!joined) return refuse(ws, "bad-message", "the first message must be hello", who);
      const cluster = clusters.get(joined.cluster);
      if (!cluster) return;
      const out: RelayMessage = { t: "deliver", from: joined.peer.id, body: msg.body };
      if (msg.to === "*") {
        for (const p of cluster.peers.values()) if (p.id !== joined.peer.id) sendTo(p.ws, out);
      } else if (msg.to !== joined.peer.id) {
        const p = cluster.peers.get(msg.to);
        if (p) sendTo(p.ws, out); // a peer that left meanwhile just misses it
      }
    });

    ws.on("close", () => {
      clearTimeout(helloTimer);
      if (joined) leave(joined.cluster, joined.peer);
    });
    ws.on("error", (e) => log(`connection ${who}: ${e.message}`));
  });

  function hello(ws: WebSocket, m: Extract<ClientMessage, { t: "hello" }>, who: string): { cluster: string; peer: Peer } | undefined {
    if (m.fabric !== FABRIC_VERSION) {
      refuse(ws, "version-mismatch", `the relay speaks fabric v${FABRIC_VERSION}, the tab v${m.fabric}`, who);
      return undefined;
    }
    let cluster = clusters.get(m.cluster);
    if (m.create) {
      if (cluster) return void refuse(ws, "cluster-exists", "a cluster with this id is already registered", who);
      if (clusters.size >= limits.maxClusters) return void refuse(ws, "relay-full", `the relay already serves ${limits.maxClusters} clusters`, who);
      cluster = { token: m.token, creator: m.peer, peers: new Map() };
      clusters.set(m.cluster, cluster);
    } else {
      if (!cluster) return void refuse(ws, "unknown-cluster", "no cluster with this id on the relay (is its first tab still open?)", who);
      if (!tokensEqual(m.token, cluster.token)) return void refuse(ws, "wrong-token", "the token is not this cluster's", who);
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
    for (const p of cluster.peers.values()) sendTo(p.ws, { t: "peer-gone", peer: peer.id });
    if (peer.id === cluster.creator) {
      // Tab 0 is gone, so is the cluster: free its id and tell the others why signaling ends.
      clusters.delete(clusterId);
      for (const p of cluster.peers.values()) {
        sendTo(p.ws, { t: "error", code: "cluster-closed", detail: "the cluster's first tab (tab 0) left" });
        p.ws.close(1000, "cluster-closed");
      }
    }
  }

  return { stats: () => ({ clusters: clusters.size, peers: [...clusters.values()].reduce((n, c) => n + c.peers.size, 0) }) };
}

/** A relay on its own port (scripts/relay.ts); give `server` (e.g. an https.Server) for wss://. */
export async function startRelay(opts: RelayOptions & { server?: HttpServer } = {}): Promise<RelayServer> {
  const own = opts.server;
  const wss = own
    ? new WebSocketServer({ server: own, maxPayload: MAX_RELAY_MESSAGE_BYTES })
    : new WebSocketServer({ host: opts.host ?? "127.0.0.1", port: opts.port ?? 0, maxPayload: MAX_RELAY_MESSAGE_BYTES });
  const hub = relayHub(wss, opts);
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
    close: () =>
      new Promise<void>((resolve) => {
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
 * Other upgrade requests (Vite's HMR) are left alone.
 */
export function attachRelay(server: HttpServer | Http2SecureServer, opts: Pick<RelayOptions, "limits" | "log"> & { path?: string } = {}): { stats(): { clusters: number; peers: number }; close(): void } {
  const path = opts.path ?? RELAY_PATH;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_RELAY_MESSAGE_BYTES });
  const hub = relayHub(wss, opts);
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? "/", "http://x").pathname !== path) return;
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  };
  // Both server kinds emit "upgrade" with these arguments (HTTP/1.1 upgrades).
  const emitter = server as HttpServer;
  emitter.on("upgrade", onUpgrade);
  return {
    stats: hub.stats,
    close: () => {
      emitter.off("upgrade", onUpgrade);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
