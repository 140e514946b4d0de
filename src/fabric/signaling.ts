// A signaling transport delivers small JSON messages between the tabs of one cluster, addressed
// by peer id or to everyone ("*"). Two implementations: BroadcastChannel (tabs of one browser, no
// server) and the WebSocket relay (tabs anywhere). Both validate every message before delivery.

import type { FabricError } from "./errors.ts";
import type { Address, SignalBody } from "./messages.ts";

export interface SignalTransport {
  readonly kind: "broadcast" | "relay";
  /** This tab's peer id. */
  readonly self: string;
  /**
   * The peer that created the cluster, when the transport can vouch for it (the relay saw its
   * hello with create). Welcomes and rosters from anyone else are then refused.
   */
  readonly creator?: string;
  send(to: Address, body: SignalBody): void;
  onMessage(cb: (from: string, body: SignalBody) => void): void;
  /** A peer's signaling connection ended (the relay tells; a BroadcastChannel cannot know). */
  onPeerGone(cb: (peer: string) => void): void;
  /** A message that failed validation was dropped (shown, never acted on). */
  onInvalid(cb: (err: FabricError) => void): void;
  /** The transport itself failed: the relay refused us or went away. Called at most once. */
  onFatal(cb: (err: FabricError) => void): void;
  close(): void;
}

export interface TransportRequest {
  cluster: string;
  self: string;
  token: string;
  /** True for tab 0: the relay registers the cluster under this token. */
  create: boolean;
  /** Tab 0: the cluster's watch token, which the relay also lets in (watchers join with it). */
  watchToken?: string;
}

/** Opens a transport; resolves when it can carry messages (the relay accepted us). */
export type TransportFactory = (req: TransportRequest) => Promise<SignalTransport>;

/** Small typed multi-listener helper shared by the transports. */
export class Listeners<A extends unknown[]> {
  private readonly list: ((...args: A) => void)[] = [];
  add(cb: (...args: A) => void): void {
    this.list.push(cb);
  }
  emit(...args: A): void {
    for (const cb of this.list) cb(...args);
  }
}
