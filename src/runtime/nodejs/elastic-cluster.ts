// An elastic VM in Node (issue 14): it boots on node 0 with vCPU 0 alone, and nodes join with one
// vCPU each and leave again while the guest runs. The guest learns of each CPU through ACPI CPU
// hotplug on node 0's device; the DSM changes members at global quiescence (membership-driver.ts).
// The tests and the benchmark drive it without a browser.

import { MembershipCoordinator } from "../../protocol/dsm/membership.ts";
import type { DsmQuiescenceReport } from "../../protocol/dsm/node.ts";
import { joinNode, leaveNode, type MembershipChangeResult, type MembershipNodes } from "../node/membership-driver.ts";
import { NodeFailureError } from "../../protocol/tab/node-failure.ts";
import { startCluster, type ClusterEvent, type ClusterOptions, type NodeCluster } from "./cluster.ts";

export interface ElasticOptions extends Omit<ClusterOptions, "nodes" | "possibleCpus" | "presentCpus" | "slots" | "deviceNode"> {
  /** The most vCPUs the VM may have (the firmware describes them all; vCPU 0 is present at boot). */
  possibleCpus: number;
}

export interface ElasticCluster {
  cluster: NodeCluster;
  /** The node hosting each possible vCPU, or null. */
  hosts(): (number | null)[];
  /**
   * A new node joins hosting `vcpu` (default: the lowest free one) and the CPU is plugged in; the
   * guest brings it online on its own (watch the console). Resolves once it is plugged in.
   */
  join(vcpu?: number): Promise<{ node: number; vcpu: number; change: MembershipChangeResult }>;
  /**
   * The guest takes `vcpu` offline and ejects it (its tasks move away), its node hands every page
   * it owns to node 0 and ends. Refused for vCPU 0 (node 0 holds the devices).
   */
  leave(vcpu: number, ejectMs?: number): Promise<{ node: number; change: MembershipChangeResult; ownedAfter: number }>;
}

/** How long the guest may take to offline and eject a CPU (it migrates tasks, on a loaded machine). */
const EJECT_MS = 300_000;

export function startElasticCluster(opts: ElasticOptions): ElasticCluster {
  const { possibleCpus } = opts;
  const cluster = startCluster({ ...opts, nodes: [{ vcpu: 0 }], deviceNode: 0, possibleCpus, presentCpus: 1, slots: possibleCpus });
  const hosts: (number | null)[] = Array.from({ length: possibleCpus }, (_, v) => (v === 0 ? 0 : null));
  const coord = new MembershipCoordinator(possibleCpus, [0]);
  let busy = false;
  const nodes = (vcpu: number): MembershipNodes => ({
    pause: async (n) => void (await cluster.control(n, { op: "pause" })),
    resume: async (n) => void (await cluster.control(n, { op: "resume" })),
    report: async (n) => {
      // A node that failed meanwhile (it refused a message, its engine stopped) ends the change.
      const failed = cluster.failures()[0];
      if (failed) throw new NodeFailureError(failed);
      return (await cluster.control(n, { op: "dsm-report" })) as DsmQuiescenceReport;
    },
    addMember: async (at, k) => void (await cluster.control(at, { op: "dsm-add-member", node: k })),
    removeMember: async (at, k) => void (await cluster.control(at, { op: "dsm-remove-member", node: k })),
    leave: async (k) => void (await cluster.control(k, { op: "dsm-leave" })),
    setHost: async (at, v, host) => void (await cluster.control(at, { op: "set-host", vcpu: v, node: host })),
    start: (k, members) => cluster.startNode(k, { vcpu, vcpuNodes: hosts.map((h, v) => (v === vcpu ? k : h)), members }),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  });
  const exclusive = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    if (busy) throw new Error(`cannot ${what}: another join or leave is in progress`);
    busy = true;
    try {
      return await body();
    } finally {
      busy = false;
    }
  };
  return {
    cluster,
    hosts: () => [...hosts],
    join: (wanted) =>
      exclusive("join", async () => {
        const vcpu = wanted ?? hosts.indexOf(null);
        if (vcpu < 0) throw new Error(`cannot join: all ${possibleCpus} vCPUs are taken`);
        if (!Number.isInteger(vcpu) || vcpu < 1 || vcpu >= possibleCpus) throw new RangeError(`cannot join with vCPU ${vcpu}: possible vCPUs to add are 1..${possibleCpus - 1}`);
        if (hosts[vcpu] !== null) throw new Error(`cannot join with vCPU ${vcpu}: node ${hosts[vcpu]} hosts it`);
        const members = coord.members();
        const node = Array.from({ length: possibleCpus }, (_, i) => i).find((i) => !members.includes(i));
        if (node === undefined) throw new Error("cannot join: no free node slot");
        const change = await joinNode(coord, nodes(vcpu), node, vcpu, () => performance.now());
        hosts[vcpu] = node;
        await cluster.control(0, { op: "plug", cpu: vcpu });
        return { node, vcpu, change };
      }),
    leave: (vcpu, ejectMs = EJECT_MS) =>
      exclusive("leave", async () => {
        if (vcpu === 0) throw new Error("vCPU 0 cannot leave: its node holds the devices (stop the VM instead)");
        const node = hosts[vcpu];
        if (node === null || node === undefined) throw new Error(`cannot leave with vCPU ${vcpu}: no node hosts it`);
        const from = cluster.events().length;
        await cluster.control(0, { op: "unplug", cpu: vcpu });
        // The guest offlines the CPU (moving its tasks away) and then calls _EJ0; a refusal comes as
        // an _OST with a failure status for the eject request (event 3).
        const answer = await cluster.waitForEvent(
          (e: ClusterEvent) => e.cpu === vcpu && (e.event === "cpu-ejected" || (e.event === "ost" && e.ostEvent === 3 && (e.status as number) !== 0 && (e.status as number) !== 0x84)),
          ejectMs,
          from,
        );
        if (answer.event !== "cpu-ejected") throw new Error(`the guest refused to eject vCPU ${vcpu} (_OST status 0x${(answer.status as number).toString(16)})`);
        await cluster.control(node, { op: "pause" });
        const change = await leaveNode(coord, nodes(vcpu), node, vcpu, () => performance.now());
        hosts[vcpu] = null;
        const drained = (await cluster.control(node, { op: "drain" })) as { owned: number };
        await cluster.endNode(node);
        return { node, change, ownedAfter: drained.owned };
      }),
  };
}
