// Messages between the page and a VM node's Web Worker (control plane only: the nodes' own
// traffic goes through the shared-memory links, never through the page).

import type { LocalLinksPlan } from "../channel/local-links.ts";
import type { NodeImages } from "../node/vcpu-node.ts";

export interface NodeInit {
  kind: "init";
  plan: LocalLinksPlan;
  wasm: ArrayBuffer;
  images: NodeImages;
  cmdline: string;
  memoryMiB: number;
  runCpu: boolean;
  /** The node that hosts the devices; the others forward their port I/O to it. */
  deviceNode: number;
  /** Set to non-zero by the page to stop a node that only serves memory. */
  stop: SharedArrayBuffer;
}

export type PageToNode = NodeInit | { kind: "serial-input"; bytes: Uint8Array } | { kind: "stop" };

export interface NodeStatus {
  node: number;
  runCpu: boolean;
  instructions: number;
  faults: number;
  blockedMs: number;
  revocations: number;
}

export type NodeToPage =
  | { kind: "ready"; node: number }
  | { kind: "serial"; bytes: Uint8Array }
  | { kind: "status"; status: NodeStatus }
  | { kind: "error"; node: number; message: string };
