// Tab 0's side of an elastic VM in a cluster of tabs (issue 14): the one place that adds a joining
// tab's vCPUs to the running guest and takes a leaving tab's out. It drives the same ElasticVm as
// the Node cluster and the one-tab VM, over a port whose nodes are here or on other tabs: a request
// for a node of another tab goes there as a `node-*` control message and comes back as a
// `node-reply`, matched by id and checked. Changes run one at a time, in the order tabs asked.
//
// Node v hosts vCPU v (ElasticVm takes a vCPU's own slot), so the roster's slices route frames.

import { ElasticVm, type ElasticEvent } from "../node/elastic-vm.ts";
import { checkControlReply, type NodeControlRequest, type NodeEvent } from "../../protocol/tab/node-control.ts";
import type { ControlMessage } from "../../protocol/tab/envelope.ts";

/** A request for a node on another tab, as the envelope carries it (the id is added here). */
type NodeRequest = Extract<ControlMessage, { t: "node-start" | "node-control" | "node-end" }>;
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

export interface ElasticHostDeps {
  possibleCpus: number;
  /** Tab 0's own vCPUs 0..present-1, online from the boot. */
  present: number;
  /** Tab 0's nodes (ClusterMachine). */
  local: {
    runs(node: number): boolean;
    control(node: number, request: NodeControlRequest): Promise<unknown>;
    startNode(node: number, vcpuNodes: (number | null)[], members: number[]): Promise<void>;
    endNode(node: number): void;
  };
  /** The roster: the slice of vCPUs each tab was admitted with. */
  members(): readonly { tab: number; vcpus: readonly number[] }[];
  send(tab: number, msg: ControlMessage): void;
  /** Why the VM stopped, or null while it runs. */
  failure(): string | null;
  /** A change failed midway (the VM is paused, or a node half in): the VM cannot go on. */
  fatal(why: string): void;
  /** The tab hosting each vCPU's node (null: none), and the change under way ("" when none). */
  onHosts(hosts: (number | null)[], changing: string): void;
  /** Whether the guest is up far enough to take a CPU (its shell runs, so its hotplug handler does). */
  guestReady(): boolean;
  /** How long a node on another tab may take to answer (default 150 s: starting one builds a v86). */
  requestMs?: number;
}

export class ElasticHost {
  private readonly vm: ElasticVm;
  /** The tab running each node slot (node v hosts vCPU v); set when its start is asked. */
  private readonly nodeTab: (number | null)[];
  private readonly events: ElasticEvent[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly pending = new Map<number, { tab: number; request: NodeRequest; resolve(v: unknown): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> }>();
  private nextId = 1;
  /** The change under way ("" when none) and the tabs waiting for theirs. */
  private changing = "";
  private readonly queue: { tab: number; kind: "join" | "leave" }[] = [];
  private draining = false;
  /** Whether the change under way paused a node (from then on a failure leaves the VM unsafe). */
  private paused = false;

  constructor(private readonly deps: ElasticHostDeps) {
    const n = deps.possibleCpus;
    this.nodeTab = Array.from({ length: n }, (_, v) => (v < deps.present ? 0 : null));
    this.vm = new ElasticVm({
      possibleCpus: n,
      present: deps.present,
      control: (node, request) => this.control(node, request),
      start: (k, _vcpu, hosts, members) => {
        const tab = this.sliceOwner(k);
        if (tab === undefined) return Promise.reject(new Error(`no tab's slice holds vCPU ${k}`));
        this.nodeTab[k] = tab;
        this.publish();
        return tab === 0 ? deps.local.startNode(k, hosts, members) : this.ask(tab, { t: "node-start", node: k, vcpuNodes: hosts, members }).then(() => {});
      },
      end: async (k) => {
        const tab = this.nodeTab[k];
        if (tab === 0) deps.local.endNode(k);
        else if (tab !== null && tab !== undefined) await this.ask(tab, { t: "node-end", node: k });
        this.nodeTab[k] = null;
      },
      eventCount: () => this.events.length,
      waitForEvent: (match, ms, from) => this.waitForEvent(match, ms, from),
      failure: () => deps.failure(),
    });
  }

  /** The tab hosting each vCPU's node, or null. */
  hosts(): (number | null)[] {
    return [...this.nodeTab];
  }

  /** Whether `tab` runs a node of the VM (losing it loses pages and a CPU). */
  hostsNode(tab: number): boolean {
    return this.nodeTab.includes(tab);
  }

  /** What node 0's hotplug device reported (the guest ejected a CPU, answered with _OST). */
  nodeEvent(node: number, e: NodeEvent): void {
    this.events.push({ ...e, node });
    this.listeners.forEach((l) => l());
  }

  /** `tab` has the images and its links, and waits for its nodes to be started. */
  joinWhenReady(tab: number): void {
    if (this.queue.some((q) => q.tab === tab) || this.hostsNode(tab)) throw new Error(`tab ${tab} said it is ready twice`);
    this.queue.push({ tab, kind: "join" });
    void this.drain();
  }

  /** `tab` asks to leave: refused while another change is under way or waits. */
  requestLeave(tab: number): void {
    if (tab === 0) return this.tell(tab, { t: "leave-refused", reason: "tab 0 holds the devices and vCPU 0: it cannot leave (Stop ends the VM)" });
    const waiting = this.queue.findIndex((q) => q.tab === tab && q.kind === "join");
    if (waiting >= 0 && !this.hostsNode(tab)) {
      // Its join has not begun: nothing of it is in the VM.
      this.queue.splice(waiting, 1);
      return this.tell(tab, { t: "leave-done" });
    }
    if (this.changing || this.queue.length)
      return this.tell(tab, { t: "leave-refused", reason: `another change is in progress (${this.changing || "a join is waiting"}); Leave again when it is done` });
    if (!this.hostsNode(tab)) return this.tell(tab, { t: "leave-done" });
    this.queue.push({ tab, kind: "leave" });
    void this.drain();
  }

  /** `tab` left the cluster: its requests fail (a change it was part of then stops the VM). */
  tabGone(tab: number): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.tab === tab) this.queue.splice(i, 1);
    for (const [id, p] of this.pending)
      if (p.tab === tab) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new Error(`tab ${tab} left the cluster`));
      }
  }

  /** A `node-reply` from `from`: the answer to one of this tab's requests to it. */
  onReply(from: number, msg: Extract<ControlMessage, { t: "node-reply" }>): void {
    const p = this.pending.get(msg.id);
    if (!p || p.tab !== from) throw new Error(`a node-reply ${msg.id} that tab 0 did not ask tab ${from} for`);
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (!msg.ok) return p.reject(new Error(`tab ${from}: ${msg.error}`));
    try {
      p.resolve(p.request.t === "node-control" ? checkControlReply(p.request.request, msg.value) : null);
    } catch (err) {
      p.reject(new Error(`tab ${from} answered ${p.request.t === "node-control" ? p.request.request.op : p.request.t} for node ${p.request.node} wrongly: ${(err as Error).message}`));
    }
  }

  /** The VM stopped: every request in flight fails. */
  stop(why: string): void {
    this.queue.length = 0;
    for (const p of this.pending.values()) (clearTimeout(p.timer), p.reject(new Error(why)));
    this.pending.clear();
  }

  private control(node: number, request: NodeControlRequest): Promise<unknown> {
    if (request.op === "pause") this.paused = true;
    if (this.deps.local.runs(node)) return this.deps.local.control(node, request);
    const tab = this.nodeTab[node];
    if (tab === null || tab === undefined || tab === 0) return Promise.reject(new Error(`node ${node} does not run on any tab`));
    return this.ask(tab, { t: "node-control", node, request });
  }

  private ask(tab: number, body: WithoutId<NodeRequest>): Promise<unknown> {
    const id = this.nextId++;
    const request = { ...body, id } as NodeRequest;
    const ms = this.deps.requestMs ?? 150_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`tab ${tab} did not answer ${request.t} for node ${request.node} within ${ms / 1000} s`));
      }, ms);
      this.pending.set(id, { tab, request, resolve, reject, timer });
      try {
        this.deps.send(tab, request);
      } catch (err) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(err as Error);
      }
    });
  }

  private waitForEvent(match: (e: ElasticEvent) => boolean, ms: number, from: number): Promise<ElasticEvent> {
    return new Promise((resolve, reject) => {
      const done = (f: () => void) => (clearTimeout(t), this.listeners.delete(check), f());
      const t = setTimeout(() => done(() => reject(new Error(`the guest did not answer within ${ms / 1000} s`))), ms);
      const check = () => {
        const e = this.events.slice(from).find(match);
        if (e) done(() => resolve(e));
        else if (this.deps.failure()) done(() => reject(new Error(this.deps.failure()!)));
      };
      this.listeners.add(check);
      check();
    });
  }

  /** An answer to a tab, best effort: a tab that went meanwhile needs none, and the queue must go on. */
  private tell(tab: number, msg: ControlMessage): void {
    try {
      this.deps.send(tab, msg);
    } catch {
      // its link closed: it left the cluster (tabGone follows)
    }
  }

  private sliceOwner(vcpu: number): number | undefined {
    return this.deps.members().find((m) => m.vcpus.includes(vcpu))?.tab;
  }

  private publish(): void {
    this.deps.onHosts(this.hosts(), this.changing);
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next && !this.deps.failure(); next = this.queue.shift()) {
        try {
          if (next.kind === "join") await this.join(next.tab);
          else await this.leave(next.tab);
        } catch (err) {
          this.deps.fatal(`the ${next.kind} of tab ${next.tab} failed: ${(err as Error).message}`);
        } finally {
          if (this.changing) {
            this.changing = "";
            this.publish();
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async join(tab: number): Promise<void> {
    const member = this.deps.members().find((m) => m.tab === tab);
    if (!member) return; // it left while it waited
    if (!this.deps.guestReady())
      return this.tell(tab, { t: "join-refused", reason: "the VM is still booting (its shell is not up, so it cannot take a CPU yet); join again when it is" });
    for (const v of member.vcpus) {
      if (this.nodeTab[v] !== null) continue;
      this.changing = `tab ${tab} joins with vCPU ${v}`;
      this.paused = false;
      this.publish();
      try {
        await this.vm.join(v);
      } catch (err) {
        const why = (err as Error).message;
        // Before the VM paused (the node did not start) nothing changed: the tab is refused and the
        // VM runs on, unless an earlier vCPU of the tab already joined (the tab cannot go then).
        const earlier = this.nodeTab.some((t, u) => t === tab && u !== v);
        if (!this.paused && !earlier) {
          if (this.nodeTab[v] === tab) await this.endQuietly(tab, v);
          this.nodeTab[v] = null;
          // Every tab hears that the tab runs no node before it goes (so none stops the VM for it).
          this.done();
          return this.tell(tab, { t: "join-refused", reason: `vCPU ${v} could not join: ${why}` });
        }
        return this.deps.fatal(`tab ${tab}'s join with vCPU ${v} failed midway: ${why}`);
      }
    }
  }

  /** Ends a node that started but never became a member (best effort: the tab is refused anyway). */
  private async endQuietly(tab: number, node: number): Promise<void> {
    try {
      if (tab === 0) this.deps.local.endNode(node);
      else await this.ask(tab, { t: "node-end", node });
    } catch {
      // it failed to start, or its tab went: nothing runs to end
    }
  }

  private async leave(tab: number): Promise<void> {
    const vcpus = this.nodeTab.flatMap((t, v) => (t === tab ? [v] : [])).reverse();
    for (const v of vcpus) {
      this.changing = `tab ${tab} leaves with vCPU ${v}`;
      this.paused = false;
      this.publish();
      try {
        await this.vm.leave(v);
      } catch (err) {
        const why = (err as Error).message;
        // Before its node paused (the guest refused the eject, or took too long) nothing changed.
        if (!this.paused) return this.tell(tab, { t: "leave-refused", reason: `vCPU ${v} cannot leave: ${why}` });
        return this.deps.fatal(`tab ${tab}'s leave with vCPU ${v} failed midway: ${why}`);
      }
    }
    this.done();
    this.tell(tab, { t: "leave-done" });
  }

  /** The change is over: every tab hears the hosts as they are now. */
  private done(): void {
    this.changing = "";
    this.publish();
  }
}
