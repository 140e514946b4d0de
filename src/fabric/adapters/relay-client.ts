// Signaling through the WebSocket relay (tabs on different machines). Resolves once the relay
// accepted our hello; the relay's refusals become FabricErrors with the matching code.

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

/** How a relay refusal reads to the joining user. */
function errorFor(code: RelayErrorCode, detail: string, url: string): FabricError {
  const map: Partial<Record<RelayErrorCode, FabricErrorCode>> = {
    "wrong-token": "wrong-token",
    "unknown-cluster": "unknown-cluster",
    "cluster-full": "cluster-full",
    "version-mismatch": "version-mismatch",
    "cluster-closed": "host-left",
  };
  return new FabricError(map[code] ?? "relay", `relay ${url} refused: ${code}: ${detail}`);
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

  static open(url: string, req: TransportRequest, Ctor: WebSocketCtor): Promise<RelayTransport> {
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
      ws.onopen = () => ws.send(JSON.stringify({ t: "hello", cluster: req.cluster, token: req.token, peer: req.self, create: req.create, fabric: FABRIC_VERSION }));
      ws.onmessage = (ev) => {
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
            resolve(t);
            return;
          case "error": {
            const err = errorFor(m.code, m.detail, url);
            if (!ready) reject(err);
            else t.fail(err);
            return;
          }
          case "deliver":
            if (ready) t.messages.emit(m.from, m.body);
            return;
          case "peer-gone":
            if (ready) t.gone.emit(m.peer);
            return;
        }
      };
      ws.onerror = () => {
        // The close event follows with the code; nothing more to learn here.
      };
      ws.onclose = (ev) => {
        const err = new FabricError("relay", `the relay ${url} closed the connection (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ""})`);
        if (!ready) reject(ev.code === 1006 ? new FabricError("relay", `cannot reach the relay ${url} (is it running? see scripts/relay.ts)`) : err);
        else if (!t.closedByUs) t.fail(err);
      };
    });
  }

  private fail(err: FabricError): void {
    if (this.fatalError) return;
    this.fatalError = err;
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
    this.ws.close(1000, "leaving");
  }
}

export function relayTransport(url: string, Ctor: WebSocketCtor = globalThis.WebSocket as unknown as WebSocketCtor): TransportFactory {
  return (req) => RelayTransport.open(url, req, Ctor);
}
