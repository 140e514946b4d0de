// Messages between the page and a VM node's Web Worker (control plane only: the nodes' own
// traffic goes through the shared-memory links, never through the page).

import type { LocalLinksPlan } from "../channel/local-links.ts";

/** What a node boots: the default guest by SeaBIOS (one vCPU) or by our firmware (N vCPUs). */
export type NodeGuest =
  | { kind: "seabios"; bios: ArrayBuffer; vgaBios: ArrayBuffer; bzImage: ArrayBuffer; initrd: ArrayBuffer; cmdline: string; memoryMiB: number }
  | { kind: "firmware"; firmware: ArrayBuffer; bzImage: ArrayBuffer; initrd: ArrayBuffer; cmdline: string; memoryMiB: number };

export interface NodeInit {
  kind: "init";
  plan: LocalLinksPlan;
  wasm: ArrayBuffer;
  guest: NodeGuest;
  /** The vCPU this node hosts, or null for a node that only holds memory. */
  vcpu: number | null;
  /** The node hosting each vCPU. */
  vcpuNodes: number[];
  /** The node that hosts the devices; the others forward their I/O to it. */
  deviceNode: number;
  /** Set to non-zero by the page to stop a node that only serves memory. */
  stop: SharedArrayBuffer;
}

export type PageToNode = NodeInit | { kind: "serial-input"; bytes: Uint8Array } | { kind: "stop" };

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
  | { kind: "error"; node: number; message: string };
