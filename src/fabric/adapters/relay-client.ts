// Signaling through the WebSocket relay (tabs on different machines). Resolves once the relay
// accepted our hello; the relay's refusals become FabricErrors with the matching code and a
// message that names the refusal. A relay that goes silent (no answer to our hello or to a ping)
// is a fatal `relay` error: before "ready" the open fails, after it `onFatal` fires (the member's
// "signaling lost").

import { FabricError, type FabricErrorCode } from "../errors.ts";
import type { Address, SignalBody } from "../messages.ts";
import { FABRIC_VERSION, parseRelayMessage, type RelayErrorCode, type RelayMessage } from "../relay/messages.ts";
import { Listeners, type SignalTransport, type TransportFactory, type TransportRequest } from "../signaling.ts";

/** What we need of a WebSocket; the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

const OPEN = 1;

/** The interval timer the keepalive runs on (tests drive it by hand). */
export interface IntervalTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}
const DEFAULT_TIMERS: IntervalTimers = {
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    (h as { unref?: () => void }).unref?.(); // Node.js: a relay client alone does not keep the process up
    return h;
  },
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

export interface RelayClientOptions {
  /**
   * How often the tab checks on the relay, in ms. Each check sends a `ping` (after "ready") unless
   * one is unanswered; the relay is gone when a ping, our hello or the connection itself is still
   * unanswered two checks later. Browsers hide the relay's WebSocket ping frames from pages, hence
   * a message of our own. A dead relay is noticed within two to three intervals. Default 5000.
   */
  pingIntervalMs?: number;
  timers?: IntervalTimers;
}

export const DEFAULT_RELAY_PING_MS = 5000;

function clientOptions(o: RelayClientOptions): Required<RelayClientOptions> {
  const pingIntervalMs = o.pingIntervalMs ?? DEFAULT_RELAY_PING_MS;
  if (typeof pingIntervalMs !== "number" || !Number.isInteger(pingIntervalMs) || pingIntervalMs < 1)
    throw new RangeError(`relay client: pingIntervalMs must be a whole number of ms, at least 1, not ${String(pingIntervalMs)}`);
  return { pingIntervalMs, timers: o.timers ?? DEFAULT_TIMERS };
}

/** Words for the refusals a user can do something about, put before the relay's own detail. */
const REFUSAL_WORDS: Partial<Record<RelayErrorCode, string>> = {
  "origin-not-allowed": "this page's site may not use the relay",
  "too-many-connections": "too many connections from this address",
  "relay-full": "the relay is full",
  "rate-limited": "this tab sent too many messages",
  "byte-rate-limited": "this tab sent too many bytes",
  "slow-reader": "this tab did not read what the relay sent it",
  "hello-timeout": "this tab said nothing in time",
};

/** How a relay refusal reads to the joining user. */
function errorFor(code: RelayErrorCode, detail: string, url: string): FabricError {
  const map: Partial<Record<RelayErrorCode, FabricErrorCode>> = {
    "wrong-token": "wrong-token",
    "unknown-cluster": "unknown-cluster",
    "cluster-full": "cluster-full",
    "version-mismatch": "version-mismatch",
    "cluster-closed": "host-left",
  };
  const words = REFUSAL_WORDS[code];
  return new FabricError(map[code] ?? "relay", `relay ${url} refused: ${code}: ${words ? `${words}: ` : ""}${detail}`);
}

export class RelayTransport implements SignalTransport {
  readonly kind = "relay";
  readonly self: string;
  creator: string | undefined;
  private readonly messages = new Listeners<[string, SignalBody]>();
  private readonly gone = new Listeners<[string]>();
  private readonly invalid = new Listeners<[FabricError]>();
  private readonly fatal = new Listeners<[FabricError]>();
  private fatalError: FabricError | undefined;
  private closedByUs = false;

  private constructor(
    private readonly ws: WebSocketLike,
    private readonly url: string,
    req: TransportRequest,
  ) {
    this.self = req.self;
  }

  static open(url: string, req: TransportRequest, Ctor: WebSocketCtor, options: RelayClientOptions = {}): Promise<RelayTransport> {
    const { pingIntervalMs, timers } = clientOptions(options);
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new Ctor(url);
      } catch (e) {
        reject(new FabricError("relay", `cannot open the relay ${url}: ${(e as Error).message}`));
        return;
      }
      const t = new RelayTransport(ws, url, req);
      let ready = false;
      let settled = false;
      const settle = (err?: FabricError) => {
        if (settled) return;
        settled = true;
        if (err) {
          t.stopKeepalive();
          reject(err);
        } else resolve(t);
      };
      // What we wait for from the relay (the open, the answer to hello, a pong) and for how many
      // checks; anything the relay sends is an answer. Two checks, not a time: a check that runs
      // late (a busy or hidden tab) gives the relay more time, never less, and an answer already
      // received but not yet handled when one check runs is handled before the next.
      let waiting: { checks: number; what: string } | undefined = { checks: 0, what: "the connection did not open" };
      const check = () => {
        if (waiting) {
          if (++waiting.checks < 2) return;
          const err = new FabricError("relay", `the relay ${url} went silent: ${waiting.what} for at least ${pingIntervalMs} ms`);
          if (!ready) {
            settle(err);
            ws.close(1000, "silent");
          } else t.fail(err); // fail() closes the socket
          return;
        }
        if (ready && ws.readyState === OPEN) {
          waiting = { checks: 0, what: "no answer to a ping" };
          ws.send(JSON.stringify({ t: "ping" }));
        }
      };
      t.timers = timers;
      t.keepalive = timers.setInterval(check, pingIntervalMs);
      ws.onopen = () => {
        waiting = { checks: 0, what: "no answer to hello" };
        ws.send(JSON.stringify({ t: "hello", cluster: req.cluster, token: req.token, peer: req.self, create: req.create, fabric: FABRIC_VERSION, ...(req.watchToken ? { watchToken: req.watchToken } : {}) }));
      };
      ws.onmessage = (ev) => {
        waiting = undefined;
        let m: RelayMessage;
        try {
          if (typeof ev.data !== "string") throw new FabricError("bad-message", "relay sent a binary frame");
          m = parseRelayMessage(ev.data);
        } catch (e) {
          t.invalid.emit(e as FabricError);
          return;
        }
        switch (m.t) {
          case "ready":
            ready = true;
            t.creator = m.creator;
            settle();
            return;
          case "error": {
            const err = errorFor(m.code, m.detail, url);
            if (!ready) settle(err);
            else t.fail(err);
            return;
          }
          case "deliver":
            if (ready) t.messages.emit(m.from, m.body);
            return;
          case "peer-gone":
            if (ready) t.gone.emit(m.peer);
            return;
          case "pong":
            return;
        }
      };
      ws.onerror = () => {
        // The close event follows with the code; nothing more to learn here.
      };
      ws.onclose = (ev) => {
        const err = new FabricError("relay", `the relay ${url} closed the connection (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ""})`);
        if (!ready) settle(ev.code === 1006 ? new FabricError("relay", `cannot reach the relay ${url} (is it running? see scripts/relay.ts)`) : err);
        else if (!t.closedByUs) t.fail(err);
        t.stopKeepalive();
      };
    });
  }

  private keepalive: unknown;
  private timers: IntervalTimers = DEFAULT_TIMERS;
  private stopKeepalive(): void {
    if (this.keepalive !== undefined) this.timers.clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  /** Signaling is over: say why once, stop pinging, and let go of the socket. */
  private fail(err: FabricError): void {
    if (this.fatalError) return;
    this.fatalError = err;
    this.stopKeepalive();
    if (this.ws.readyState === OPEN) this.ws.close(1000, "signaling lost");
    this.fatal.emit(err);
  }

  send(to: Address, body: SignalBody): void {
    if (this.ws.readyState === OPEN) this.ws.send(JSON.stringify({ t: "send", to, body }));
  }
  onMessage(cb: (from: string, body: SignalBody) => void): void {
    this.messages.add(cb);
  }
  onPeerGone(cb: (peer: string) => void): void {
    this.gone.add(cb);
  }
  onInvalid(cb: (err: FabricError) => void): void {
    this.invalid.add(cb);
  }
  onFatal(cb: (err: FabricError) => void): void {
    if (this.fatalError) cb(this.fatalError);
    else this.fatal.add(cb);
  }
  close(): void {
    this.closedByUs = true;
    this.stopKeepalive();
    this.ws.close(1000, "leaving");
  }
}

export function relayTransport(url: string, Ctor: WebSocketCtor = globalThis.WebSocket as unknown as WebSocketCtor, options: RelayClientOptions = {}): TransportFactory {
  clientOptions(options); // a bad option throws here, where it was given
  return (req) => RelayTransport.open(url, req, Ctor, options);
}
