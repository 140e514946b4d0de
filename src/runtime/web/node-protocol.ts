// Messages between the page and a VM node's Web Worker (control plane only: the nodes' own
// traffic goes through the shared-memory links, never through the page).

import type { VmEvent } from "./vm-api.ts";
import type { ViewReport } from "../../protocol/messages.ts";
import type { LocalLinksPlan } from "../links/local-links.ts";
import { describeFailure, makeFailure, type NodeFailure } from "../../protocol/tab/node-failure.ts";
import { MAX_ADDED_DELAY_MS } from "../../protocol/types.ts";
import type { NodeGuest } from "../../machine/guest-setup.ts";
import { wallClockMs } from "../node/wall-clock.ts";
import type { ElasticNodeInit, NodeControlRequest, NodeEvent } from "../node/node-control.ts";

/** What a node boots (defined with the v86 options for it in machine/guest-setup.ts). */
export type { NodeGuest };

export interface NodeInit {
  kind: "init";
  plan: LocalLinksPlan;
  wasm: ArrayBuffer;
  guest: NodeGuest;
  /** The vCPU this node hosts, or null for a node that only holds memory. */
  vcpu: number | null;
  /** The node hosting each vCPU. */
  vcpuNodes: (number | null)[];
  /** The node that hosts the devices; the others forward their I/O to it. */
  deviceNode: number;
  /** Set to non-zero by the page to stop a node that only serves memory. */
  stop: SharedArrayBuffer;
  /**
   * The live view's controls, set by the page and read by the node without a message (a node
   * serving memory never returns to its event loop): Int32 [0] = added one-way link delay (ms),
   * [1] = non-zero while a trace records. See CONTROL_DELAY_MS / CONTROL_TRACING.
   */
  control?: SharedArrayBuffer;
  /** true: the vCPU blocks on its doorbell while it spins on the clock (ServeOptions.spinWait; default false). */
  spinWait?: boolean;
  /** This node's own send channels to other tabs (a fixed cluster of tabs; links/node-channels.ts). */
  channels?: NodeChannelsInit;
  /**
   * An elastic VM (issue 14), as cluster-worker.ts's: the firmware describes `possibleCpus` CPUs of
   * which 0..presentCpus-1 are present at boot; the DSM's members when this node starts, and
   * whether it joins a running VM (it then starts with no pages). `vcpuNodes` then names a node
   * for each possible vCPU (an unhosted one: null, sent as is).
   */
  elastic?: ElasticNodeInit;
}

export interface NodeChannelsInit {
  /** One per other tab hosting vCPUs, transferred with the init (created in the same task). */
  ends: { tab: number; channel: RTCDataChannel; maxMessage: number }[];
  /** The net worker's path cells (Int32 per tab, PATH_CELL): a node sends on its channel to a tab only once the pair is direct. */
  paths: SharedArrayBuffer;
  /** The tab running each VM node. */
  hostOf: (number | null)[];
  /** Float64 [2 per node]: frames and bytes each local node sent on its channels (the tab's link counters add them). */
  sent: SharedArrayBuffer;
}

/** Control requests to a node of an elastic VM, and what it reports on its own (node/node-control.ts). */
export type { NodeControlRequest, NodeEvent };

export const CONTROL_DELAY_MS = 0;
export const CONTROL_TRACING = 1;
export const CONTROL_CELLS = 2;

/** The page's side of the control cell that every node of a tab reads (NodeInit.control). */
export class NodeControls {
  readonly cell = new SharedArrayBuffer(4 * CONTROL_CELLS);

  /** Added one-way delay (0..50 ms) on every frame each of these nodes sends, from now on. */
  setLinkDelay(ms: number): void {
    if (!Number.isInteger(ms) || ms < 0 || ms > MAX_ADDED_DELAY_MS) throw new RangeError(`added link delay ${String(ms)} ms is not an integer in 0..${MAX_ADDED_DELAY_MS}`);
    Atomics.store(new Int32Array(this.cell), CONTROL_DELAY_MS, ms);
  }

  /** The nodes record DSM and interrupt events (sent in their view reports) while this is on. */
  setTracing(on: boolean): void {
    Atomics.store(new Int32Array(this.cell), CONTROL_TRACING, on ? 1 : 0);
  }
}

/**
 * What a node reports for the live view with each snapshot, beyond it (the protocol's ViewReport,
 * which the cluster of tabs encodes with the codec to send it to the other tabs). Times are
 * wall-clock ms (timeOrigin + now).
 */
export type NodeViewReport = Omit<ViewReport, "type">;

export type PageToNode =
  | NodeInit
  | { kind: "serial-input"; bytes: Uint8Array }
  | { kind: "stop" }
  /** Answered by a `control-reply` with the same id. */
  | { kind: "control"; id: number; request: NodeControlRequest };

export interface NodeStatus {
  node: number;
  vcpu: number | null;
  /** "wait-for-sipi" until the guest starts this application processor. */
  runState: string;
  instructions: number;
  faults: number;
  blockedMs: number;
  revocations: number;
  ipisSent: number;
  ipisReceived: number;
  /** How long this node's recent DSM faults blocked it (ms), over the last `count` faults. */
  faultMs: { count: number; p50: number; p99: number } | null;
}

export type NodeToPage =
  | { kind: "ready"; node: number }
  | { kind: "serial"; bytes: Uint8Array }
  | { kind: "status"; status: NodeStatus }
  /** A StatsSnapshot encoded by the protocol codec, for the live view. */
  | { kind: "stats"; frame: Uint8Array }
  /** Sent right after each `stats` frame. */
  | { kind: "view"; report: NodeViewReport }
  /** The node stopped working (before or after it started); see NodeFailure. */
  | { kind: "failed"; failure: NodeFailure }
  /** The answer to the `control` request `id`: its value, or the node's error text. */
  | { kind: "control-reply"; id: number; ok: true; value: unknown }
  | { kind: "control-reply"; id: number; ok: false; error: string }
  | { kind: "event"; event: NodeEvent };

/** Where a page wants a node's reports (TabMachine's and ClusterMachine's layouts have these). */
export interface NodeReports {
  onStatus?(status: NodeStatus): void;
  /** Each node's statistics snapshots (frames encoded by the protocol codec), for the live view. */
  onStats?(frame: Uint8Array): void;
  /** Each node's live-view report, right after its stats frame. */
  onView?(report: NodeViewReport): void;
  /**
   * A node failed after it started (its engine, its serving, its worker). Without this, the
   * failure goes to `onEvent` as an error event.
   */
  onFailure?(failure: NodeFailure): void;
}

/**
 * Listens to a node's worker for the page: resolves when the node is ready, rejects when it fails
 * or does not start within `timeoutMs`; its serial output goes to `onEvent`, its reports and a
 * failure after the start to `reports` (else to `onEvent` as an error). (The caller creates the
 * worker: Vite bundles one only from a literal `new Worker(...)`.)
 */
export function watchNode(worker: Worker, node: { self: number; vcpu: number | null }, timeoutMs: number, onEvent: (event: VmEvent) => void, reports: NodeReports): Promise<void> {
  const { self } = node;
  return new Promise<void>((resolve, reject) => {
    let started = false;
    let failed = false;
    const timer = setTimeout(() => reject(new Error(`node ${self} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    const failure = (f: NodeFailure) => {
      if (failed) return;
      failed = true;
      clearTimeout(timer);
      if (!started) reject(new Error(describeFailure(f)));
      else if (reports.onFailure) reports.onFailure(f);
      else onEvent({ kind: "error", message: describeFailure(f) });
    };
    // An uncaught error the worker did not report itself (its script did not load, it died).
    worker.addEventListener("error", (e) => {
      const why = e.message ?? "its script did not load (no message: see the browser console)";
      failure(makeFailure(self, node.vcpu, started ? "worker" : "start", started ? why : `its worker failed: ${why}`, wallClockMs()));
    });
    worker.addEventListener("message", (e: MessageEvent<NodeToPage>) => {
      const m = e.data;
      if (m.kind === "ready") (clearTimeout(timer), (started = true), resolve());
      else if (m.kind === "serial") onEvent({ kind: "serial", bytes: m.bytes });
      else if (m.kind === "status") reports.onStatus?.(m.status);
      else if (m.kind === "stats") reports.onStats?.(m.frame);
      else if (m.kind === "view") reports.onView?.(m.report);
      else if (m.kind === "failed") failure(m.failure);
    });
  });
}

/**
 * A page's control requests to its node workers, matched with their `control-reply` by id (the
 * one place both TabMachine and ClusterMachine keep them).
 */
export class NodeRequests {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 1;

  /** Sends `request` to node `node`'s worker; resolves with its value, rejects with the node's error text. */
  send(worker: Worker | undefined, node: number, request: NodeControlRequest): Promise<unknown> {
    if (!worker) return Promise.reject(new RangeError(`node ${node} has no worker here`));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ kind: "control", id, request } satisfies PageToNode);
    });
  }

  /** A worker's answer; false for any other message. */
  answer(node: number, m: NodeToPage): boolean {
    if (m.kind !== "control-reply") return false;
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    if (m.ok) p?.resolve(m.value);
    else p?.reject(new Error(`node ${node}: ${m.error}`));
    return true;
  }

  /** The workers ended: every request in flight fails with `why`. */
  failAll(why: string): void {
    for (const p of this.pending.values()) p.reject(new Error(why));
    this.pending.clear();
  }
}
