// One error type for the whole fabric, discriminated by `code`, so the UI can say exactly what
// went wrong (and tests can assert it) without parsing messages.

export type FabricErrorCode =
  | "malformed-link" // the join link cannot be parsed
  | "wrong-token" // the link's token is not this cluster's
  | "unknown-cluster" // nobody hosts that cluster (on this browser, or on the relay)
  | "cluster-full" // no tab id or not enough free vCPUs left
  | "version-mismatch" // the joiner speaks another fabric or VM protocol version
  | "bad-message" // a signaling or link message failed validation
  | "signaling" // the offer/answer exchange failed (or never completed)
  | "ice" // no network path between the two peers
  | "channel" // the data channel failed or closed while in use
  | "relay" // the WebSocket relay refused, failed or closed
  | "host-left" // tab 0 left: the cluster is over
  | "evicted" // tab 0 removed this tab from the cluster (e.g. its links did not all come up in time)
  // A bounded queue a peer can grow is full: frames that came before any listener (the rest are
  // dropped), pings the peer leaves unanswered, pongs it asks for faster than it reads them (the
  // link is closed)
  | "overflow"
  | "closed"; // used after close()

export class FabricError extends Error {
  override name = "FabricError";
  constructor(
    readonly code: FabricErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The join errors a host (or the relay) answers a joiner with. */
export type JoinRejectCode = "wrong-token" | "unknown-cluster" | "cluster-full" | "version-mismatch" | "bad-message";
export const JOIN_REJECT_CODES: readonly JoinRejectCode[] = [
  "wrong-token",
  "unknown-cluster",
  "cluster-full",
  "version-mismatch",
  "bad-message",
];
