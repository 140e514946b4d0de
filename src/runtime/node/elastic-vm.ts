// An elastic VM's joins and leaves (issue 14), wherever its nodes run: the Node cluster
// (nodejs/elastic-cluster.ts) and a tab (web/tab-machine.ts) each give it an `ElasticPort`.
// A join starts a node in a free slot hosting a free vCPU, changes the DSM's members
// (membership-driver.ts) and plugs the CPU in at node 0's hotplug device; the guest brings it up.
// A leave unplugs it, waits for the guest's eject, hands the node's pages to node 0 and ends it.

import { MembershipCoordinator } from "../../protocol/dsm/membership.ts";
import type { DsmQuiescenceReport } from "../../protocol/dsm/node.ts";
import { joinNode, leaveNode, type MembershipChangeResult, type MembershipNodes } from "./membership-driver.ts";
import type { NodeControlRequest, NodeEvent } from "./node-control.ts";

/** A node's event, with the node that reported it. */
export type ElasticEvent = NodeEvent & { node: number };

/** How the controller reaches the nodes. Node 0 hosts vCPU 0 and the devices. */
export interface ElasticPort {
  possibleCpus: number;
  /** vCPUs 0..present-1 are online at boot, vCPU i on node i (default 1: node 0 alone). */
  present?: number;
  control(node: number, request: NodeControlRequest): Promise<unknown>;
  /** Starts node `k` hosting `vcpu` (its DSM built joining, with `members`; `vcpuNodes` as it should know them). */
  start(k: number, vcpu: number, vcpuNodes: (number | null)[], members: number[]): Promise<void>;
  /** Ends node `k`'s worker (it left). */
  end(k: number): Promise<void>;
  /** Events so far (for `from`), and a wait for one from index `from` on; rejects when a node failed. */
  eventCount(): number;
  waitForEvent(match: (e: ElasticEvent) => boolean, ms: number, from: number): Promise<ElasticEvent>;
  /** The first node failure, as text, or null: a VM that stopped makes no more changes. */
  failure(): string | null;
}

/** How long the guest may take to offline and eject a CPU (it migrates tasks, on a loaded machine). */
export const EJECT_MS = 300_000;

export class ElasticVm {
  private readonly hostOf: (number | null)[];
  private readonly coord: MembershipCoordinator;
  private busy = false;

  constructor(private readonly port: ElasticPort) {
    const n = port.possibleCpus;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`possibleCpus must be a positive integer, got ${String(n)}`);
    const present = port.present ?? 1;
    if (!Number.isInteger(present) || present < 1 || present > n) throw new RangeError(`present vCPUs must be 1..${n}, got ${String(present)}`);
    this.hostOf = Array.from({ length: n }, (_, v) => (v < present ? v : null));
    this.coord = new MembershipCoordinator(n, Array.from({ length: present }, (_, i) => i));
  }

  /** The node hosting each possible vCPU, or null. */
  hosts(): (number | null)[] {
    return [...this.hostOf];
  }

  /** Whether a join or leave is under way. */
  get changing(): boolean {
    return this.busy;
  }

  /** A new node joins hosting `vcpu` (default: the lowest free one); resolves once the CPU is plugged in. */
  join(wanted?: number): Promise<{ node: number; vcpu: number; change: MembershipChangeResult }> {
    return this.exclusive("join", async () => {
      const n = this.port.possibleCpus;
      const vcpu = wanted ?? this.hostOf.indexOf(null);
      if (vcpu < 0) throw new Error(`cannot join: all ${n} vCPUs are taken`);
      if (!Number.isInteger(vcpu) || vcpu < 1 || vcpu >= n) throw new RangeError(`cannot join with vCPU ${vcpu}: possible vCPUs to add are 1..${n - 1}`);
      if (this.hostOf[vcpu] !== null) throw new Error(`cannot join with vCPU ${vcpu}: node ${this.hostOf[vcpu]} hosts it`);
      const members = this.coord.members();
      // vCPU v's own slot when it is free (a cluster of tabs routes by it: node v hosts vCPU v).
      const node = !members.includes(vcpu) ? vcpu : Array.from({ length: n }, (_, i) => i).find((i) => !members.includes(i));
      if (node === undefined) throw new Error("cannot join: no free node slot");
      const change = await joinNode(this.coord, this.nodes(vcpu), node, vcpu, () => performance.now());
      this.hostOf[vcpu] = node;
      await this.port.control(0, { op: "plug", cpu: vcpu });
      return { node, vcpu, change };
    });
  }

  /**
   * The guest takes `vcpu` offline and ejects it (its tasks move away), its node hands every page it
   * owns to node 0 and ends. Refused for vCPU 0 (node 0 holds the devices).
   */
  leave(vcpu: number, ejectMs = EJECT_MS): Promise<{ node: number; change: MembershipChangeResult; ownedAfter: number }> {
    return this.exclusive("leave", async () => {
      if (vcpu === 0) throw new Error("vCPU 0 cannot leave: its node holds the devices (stop the VM instead)");
      const node = this.hostOf[vcpu];
      if (node === null || node === undefined) throw new Error(`cannot leave with vCPU ${vcpu}: no node hosts it`);
      const from = this.port.eventCount();
      await this.port.control(0, { op: "unplug", cpu: vcpu });
      // The guest offlines the CPU and then calls _EJ0; a refusal comes as an _OST with a failure
      // status for the eject request (event 3; 0x84 means "in progress").
      const answer = await this.port.waitForEvent(
        (e) => e.cpu === vcpu && (e.event === "cpu-ejected" || (e.event === "ost" && e.ostEvent === 3 && e.status !== 0 && e.status !== 0x84)),
        ejectMs,
        from,
      );
      if (answer.event === "ost") throw new Error(`the guest refused to eject vCPU ${vcpu} (_OST status 0x${answer.status.toString(16)})`);
      await this.port.control(node, { op: "pause" });
      const change = await leaveNode(this.coord, this.nodes(vcpu), node, vcpu, () => performance.now());
      this.hostOf[vcpu] = null;
      const drained = (await this.port.control(node, { op: "drain" })) as { owned: number };
      await this.port.end(node);
      return { node, change, ownedAfter: drained.owned };
    });
  }

  private nodes(vcpu: number): MembershipNodes {
    const p = this.port;
    return {
      pause: async (n) => void (await p.control(n, { op: "pause" })),
      resume: async (n) => void (await p.control(n, { op: "resume" })),
      report: async (n) => {
        // A node that failed meanwhile (it refused a message, its engine stopped) ends the change.
        const failed = p.failure();
        if (failed) throw new Error(`the VM stopped: ${failed}`);
        return (await p.control(n, { op: "dsm-report" })) as DsmQuiescenceReport;
      },
      addMember: async (at, k) => void (await p.control(at, { op: "dsm-add-member", node: k })),
      removeMember: async (at, k) => void (await p.control(at, { op: "dsm-remove-member", node: k })),
      leave: async (k) => void (await p.control(k, { op: "dsm-leave" })),
      setHost: async (at, v, host) => void (await p.control(at, { op: "set-host", vcpu: v, node: host })),
      start: (k, members) => p.start(k, vcpu, this.hostOf.map((h, v) => (v === vcpu ? k : h)), members),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    };
  }

  private async exclusive<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error(`cannot ${what}: another join or leave is in progress`);
    const failed = this.port.failure();
    if (failed) throw new Error(`cannot ${what}: the VM stopped (${failed})`);
    this.busy = true;
    try {
      return await body();
    } finally {
      this.busy = false;
    }
  }
}
