// A VM node that stopped working, in one shape from the node to its page (or NodeCluster) and
// between tabs, so every place that shows the stop says the same thing. Issue 13 widens the
// causes (lost links, corrupted frames); each is one more member of NODE_FAILURE_CAUSES.

export const NODE_FAILURE_CAUSES = [
  /** The vCPU engine threw out of v86's main loop: a Rust panic (a wasm trap) or a hook's error. */
  "engine",
  /** Serving the node's links threw (the poll timer, the doorbell handler, a memory-only node's loop). */
  "serve",
  /** The node's worker died (an uncaught exception or rejection outside the two above). */
  "worker",
  /** The node did not start (images, wasm, v86 init). */
  "start",
] as const;
export type NodeFailureCause = (typeof NODE_FAILURE_CAUSES)[number];

export interface NodeFailure {
  node: number;
  /** The vCPU the node hosts, or null for a node that only holds memory. */
  vcpu: number | null;
  /** The tab (fabric member) hosting it in a cluster of tabs; null elsewhere (one tab, Node.js). */
  tab: number | null;
  cause: NodeFailureCause;
  message: string;
  /** When the node noticed, wall-clock ms (performance.timeOrigin + now): comparable across tabs and workers. */
  atMs: number;
}

/** Failure messages stay short enough for a status line and for one control envelope. */
export const MAX_FAILURE_MESSAGE = 1500;

/** "node 1 (vCPU 1, tab 2) failed: <message>" */
export function describeFailure(f: NodeFailure): string {
  const where = [f.vcpu === null ? "no vCPU" : `vCPU ${f.vcpu}`, ...(f.tab === null ? [] : [`tab ${f.tab}`])].join(", ");
  return `node ${f.node} (${where}) failed: ${f.message}`;
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** A failure stamped `atMs` (wall-clock ms, from the caller: the protocol core reads no clock). */
export function makeFailure(node: number, vcpu: number | null, cause: NodeFailureCause, message: string, atMs: number): NodeFailure {
  const m = message.length > MAX_FAILURE_MESSAGE ? `${message.slice(0, MAX_FAILURE_MESSAGE - 1)}…` : message;
  return { node, vcpu, tab: null, cause, message: m, atMs };
}

/** Thrown (Node) or shown (browser) for a node failure; carries the typed failure. */
export class NodeFailureError extends Error {
  override name = "NodeFailureError";
  constructor(readonly failure: NodeFailure) {
    super(describeFailure(failure));
  }
}
