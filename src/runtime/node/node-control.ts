// What the tab (or the Node cluster's main thread) may ask of a running node of an elastic VM, and
// what a node reports on its own: one definition for both kinds of worker (cluster-worker.ts,
// node-worker.ts). The order in which the requests are used is membership-driver.ts's.

import type { VcpuNode, VcpuNodeConfig } from "./vcpu-node.ts";

/** What a worker is told about an elastic VM when it starts (Node's workerData, a tab's NodeInit). */
export interface ElasticNodeInit {
  possibleCpus: number;
  /** CPUs 0..presentCpus-1 are present at boot (the firmware's tables, node 0's device). */
  presentCpus: number;
  /** The DSM's members when this node starts. */
  members: number[];
  /** This node joins a running VM. */
  joining?: boolean;
}

/** The node's `elastic` config from what its worker was told (nothing when the VM is not elastic). */
export function elasticNodeConfig(e: ElasticNodeInit | undefined): Pick<VcpuNodeConfig, "elastic"> {
  if (!e) return {};
  const present = Array.from({ length: e.presentCpus }, (_, i) => i);
  return { elastic: { members: e.members, joining: e.joining === true, possibleCpus: e.possibleCpus, present } };
}

export type NodeControlRequest =
  /** Stops the vCPU at an instruction boundary; the node keeps serving its peers (timer and doorbell). */
  | { op: "pause" }
  | { op: "resume" }
  /** Another vCPU got a host (a node joined with it) or lost it (its node left). */
  | { op: "set-host"; vcpu: number; node: number | null }
  /** The DSM's part of a membership change (src/protocol/dsm/membership.ts). */
  | { op: "dsm-report" }
  | { op: "dsm-add-member"; node: number }
  | { op: "dsm-remove-member"; node: number }
  | { op: "dsm-leave" }
  /** After a leave completed: take in what was sent before the others forgot this node. */
  | { op: "drain" }
  /** Node 0's CPU hotplug device. */
  | { op: "plug"; cpu: number }
  | { op: "unplug"; cpu: number }
  | { op: "hotplug-state" };

/** What a node reports on its own: the guest's answers to node 0's hotplug device. */
export type NodeEvent = { event: "cpu-ejected"; cpu: number } | { event: "ost"; cpu: number; ostEvent: number; status: number };

const int = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0 && x < 256;

/** Checks a request that crossed a thread boundary; throws a message naming what is wrong. */
export function checkControlRequest(x: unknown): NodeControlRequest {
  const r = x as Record<string, unknown> | null;
  const op = typeof r === "object" && r !== null ? r.op : undefined;
  switch (op) {
    case "pause":
    case "resume":
    case "dsm-report":
    case "dsm-leave":
    case "drain":
    case "hotplug-state":
      return { op };
    case "set-host":
      if (!int(r!.vcpu) || !(r!.node === null || int(r!.node))) throw new TypeError(`set-host needs a vCPU and a node id or null, got ${JSON.stringify(r)}`);
      return { op, vcpu: r!.vcpu, node: r!.node as number | null };
    case "dsm-add-member":
    case "dsm-remove-member":
      if (!int(r!.node)) throw new TypeError(`${op} needs a node id, got ${JSON.stringify(r!.node)}`);
      return { op, node: r!.node };
    case "plug":
    case "unplug":
      if (!int(r!.cpu)) throw new TypeError(`${op} needs a CPU number, got ${JSON.stringify(r!.cpu)}`);
      return { op, cpu: r!.cpu };
    default:
      throw new TypeError(`unknown control request ${JSON.stringify(op)}`);
  }
}

/** Carries out one control request on a started node. */
export async function runNodeControl(n: VcpuNode, r: NodeControlRequest): Promise<unknown> {
  switch (r.op) {
    case "pause":
      return n.cpu.pause();
    case "resume":
      return n.cpu.resume();
    case "set-host":
      if (!n.router) throw new Error("this node routes no interrupts");
      n.router.setHost(r.vcpu, r.node);
      if (r.node !== null) n.router.introduceTo(r.node);
      n.poll();
      return null;
    case "dsm-report":
      n.poll();
      return n.dsm.quiescenceReport();
    case "dsm-add-member":
      n.agent.carryOut(n.dsm.addMember(r.node));
      return null;
    case "dsm-remove-member":
      n.agent.carryOut(n.dsm.removeMember(r.node));
      return null;
    case "dsm-leave": {
      // The engine is stopped for good: read each owned page's bytes and give up all access.
      let handedOff = 0;
      n.agent.carryOut(n.dsm.leave((page) => (handedOff++, n.vcpu.revoke(page, "none"))));
      return { handedOff, owned: ownedPages(n) };
    }
    case "drain":
      // So that a node joining later in this slot starts from empty rings.
      n.poll();
      return { owned: ownedPages(n) };
    case "plug":
    case "unplug": {
      const hotplug = n.hotplug;
      if (!hotplug) throw new Error("this node has no CPU hotplug device");
      // The SCI may change: a device access, as a forwarded port access is.
      n.cpu.deviceAccess(() => (r.op === "plug" ? hotplug.plug(r.cpu) : hotplug.requestUnplug(r.cpu)));
      return null;
    }
    case "hotplug-state":
      return n.hotplug?.snapshot() ?? null;
  }
}

/** Reports the guest's answers to node 0's hotplug device (no-op on other nodes). */
export function reportNodeEvents(n: VcpuNode, emit: (e: NodeEvent) => void): void {
  n.hotplug?.onEject((cpu) => emit({ event: "cpu-ejected", cpu }));
  n.hotplug?.onOst((cpu, ostEvent, status) => emit({ event: "ost", cpu, ostEvent, status }));
}

function ownedPages(n: VcpuNode): number {
  let owned = 0;
  for (let p = 0; p < n.dsm.pages; p++) if (n.dsm.inspect(p).owner) owned++;
  return owned;
}
