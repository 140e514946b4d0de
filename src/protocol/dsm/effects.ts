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
   * the page and let the faulting vCPU retry. Every grant must be answered with
   * `DsmNode.accessDone(page)` once the retried access happened (or the vCPU moved on to wait for
   * something else): until then the page stays here, which is what stops pages ping-ponging
   * between nodes without any of them making progress.
   */
  | { type: "grant"; page: PageNumber; access: FaultAccess; data: PageData }
  /**
   * Lower the engine's mapping of `page` to `access` (flushing any cached translation), and once
   * no vCPU can use the old mapping any more, call `DsmNode.revoked(page, bytes)`, with the page's
   * bytes when `wantBytes` is set. May complete later (asynchronously); revokes of one page must
   * complete in the order they were asked for. The engine must never wait on another node to do it.
   */
  | { type: "revoke"; page: PageNumber; access: "none" | "read"; wantBytes: boolean };

/** Thrown when a peer's message contradicts the protocol (a bug or a misbehaving peer): stop the VM. */
export class DsmProtocolError extends Error {
  override name = "DsmProtocolError";
}

/** Thrown when the local caller passes something invalid (page out of range, unknown node, ...). */
export class DsmUsageError extends Error {
  override name = "DsmUsageError";
}
