// One attempt to open a WebRTC link to one peer, as the mesh sees it. The browser implementation
// wraps simple-peer (peer-simple.ts); unit tests use an in-memory one.

import type { FabricError } from "./errors.ts";
import type { RawChannel } from "./link.ts";
import type { SignalData } from "./messages.ts";

export interface PeerConnector {
  /** Feeds the remote side's offer/answer/candidate. */
  signal(data: SignalData): void;
  /** Local offer/answer/candidates to send to the remote side through signaling. */
  onSignal(cb: (data: SignalData) => void): void;
  /** The data channel is open. */
  onConnect(cb: (raw: RawChannel) => void): void;
  /** The attempt failed before the channel opened; the error names the step (signaling, ice, channel). */
  onError(cb: (err: FabricError) => void): void;
  destroy(): void;
}

export interface ConnectorRequest {
  initiator: boolean;
  /** Tab id of the other side (its member number), for messages. */
  remoteTab: number;
}

export type ConnectorFactory = (req: ConnectorRequest) => PeerConnector;
