// An elastic VM in Node (issue 14): it boots on node 0 with vCPU 0 alone, and nodes join with one
// vCPU each and leave again while the guest runs (node/elastic-vm.ts over worker threads). The
// tests and the benchmark drive it without a browser.

import { ElasticVm, type ElasticEvent } from "../node/elastic-vm.ts";
import type { NodeEvent } from "../node/node-control.ts";
import { describeFailure } from "../../protocol/tab/node-failure.ts";
import { startCluster, type ClusterOptions, type NodeCluster } from "./cluster.ts";

export interface ElasticOptions extends Omit<ClusterOptions, "nodes" | "possibleCpus" | "presentCpus" | "slots" | "deviceNode"> {
  /** The most vCPUs the VM may have (the firmware describes them all; vCPU 0 is present at boot). */
  possibleCpus: number;
}

export interface ElasticCluster {
  cluster: NodeCluster;
  hosts: ElasticVm["hosts"];
  join: ElasticVm["join"];
  leave: ElasticVm["leave"];
}

export function startElasticCluster(opts: ElasticOptions): ElasticCluster {
  const { possibleCpus } = opts;
  const cluster = startCluster({ ...opts, nodes: [{ vcpu: 0 }], deviceNode: 0, possibleCpus, presentCpus: 1, slots: possibleCpus });
  const vm = new ElasticVm({
    possibleCpus,
    control: (node, request) => cluster.control(node, request),
    start: (k, vcpu, vcpuNodes, members) => cluster.startNode(k, { vcpu, vcpuNodes, members }),
    end: (k) => cluster.endNode(k),
    eventCount: () => cluster.events().length,
    waitForEvent: (match, ms, from) => cluster.waitForEvent((e) => match(e as ElasticEvent), ms, from) as Promise<NodeEvent & { node: number }>,
    failure: () => {
      const f = cluster.failures()[0];
      return f ? describeFailure(f) : null;
    },
  });
  return { cluster, hosts: () => vm.hosts(), join: (vcpu) => vm.join(vcpu), leave: (vcpu, ms) => vm.leave(vcpu, ms) };
}
