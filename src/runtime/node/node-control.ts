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

// The requests, events and their checker are the protocol's (tab 0 sends them to other tabs too).
export { checkControlRequest, type NodeControlRequest, type NodeEvent } from "../../protocol/tab/node-control.ts";
import type { NodeControlRequest, NodeEvent } from "../../protocol/tab/node-control.ts";

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
