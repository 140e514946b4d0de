// What a DsmNode asks its surroundings to do. The node itself never touches memory, network or
// time: it returns these, in order, and the driver (simulator, worker, tab agent) carries them out.

import type { DsmMessage, PageData } from "../messages.ts";
import type { FaultAccess, NodeId, PageNumber } from "../types.ts";

export type DsmEffect =
  /** Send a DSM message to another node (links must keep per-pair FIFO order). */
  | { type: "send"; to: NodeId; msg: DsmMessage }
  /**
   * The engine may now access `page` at `access`: first install `data` into local memory
   * ("current" means the local bytes are already right, "zero" means fill with zeros), then map
   * the page and let the vCPUs waiting on it retry. Every grant must be answered with exactly one
   * `DsmNode.accessDone(page)`: until then the grant is *held* (the page is pinned here: forwarded
   * requests, invalidations and further local faults on it wait), which is what stops pages
   * ping-ponging between nodes without any of them making progress.
   * Rule for the engine: never wait for a page while holding a grant of that page or of a
   * higher-numbered one (ask for the strongest access the instruction needs on a page at once).
   * An instruction that needs several pages either releases its grants before faulting again
   * (simple, but can livelock under contention) or pins them in ascending page order, faulting
   * even on pages it can access (the answer is an immediate grant = a pin); see README.md.
   */
  | { type: "grant"; page: PageNumber; access: FaultAccess; data: PageData }
  /**
   * Lower the engine's mapping of `page` to `access` (flushing any cached translation), and once
   * no vCPU can use the old mapping any more, call `DsmNode.revoked(page, bytes)`, with the page's
   * bytes when `wantBytes` is set. May complete later (asynchronously); revokes of one page must
   * complete in the order they were asked for. The engine must never wait on another node to do it.
   */
  | { type: "revoke"; page: PageNumber; access: "none" | "read"; wantBytes: boolean }
  /**
   * (Only with DsmConfig.holdGrants.) `page` came here to be written and the engine has used
   * it: its hold window opens. Forwarded requests for it wait until `DsmNode.holdOver(page)`, which
   * the driver calls after the window (Mirage's delta), whatever other nodes do.
   */
  | { type: "hold"; page: PageNumber };

/** Thrown when a peer's message contradicts the protocol (a bug or a misbehaving peer): stop the VM. */
export class DsmProtocolError extends Error {
  override name = "DsmProtocolError";
}

/** Thrown when the local caller passes something invalid (page out of range, unknown node, ...). */
export class DsmUsageError extends Error {
  override name = "DsmUsageError";
}
