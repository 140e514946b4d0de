// This tab's share of a VM whose nodes are spread over several tabs: one Web Worker per local node
// (node i hosts vCPU i; node 0 also hosts the devices and owns guest RAM at start), shared-memory
// rings between them, and a net worker (net-worker.ts, issue 15) whose far ends are the other tabs:
// it carries the nodes' frames on data channels it owns, or, for a tab that cannot go direct, hands
// them to `sendRemote` (the fabric, through this main thread) and takes what the fabric delivers.
// The guest is Linux or the self-test; both run in node-worker.ts.

import type { VmEvent } from "./vm-api.ts";
import { nodePlan, planTab, type RemoteSend, type TabPlan } from "../links/tab-bridge.ts";
import type { VmLinkCounters, VmLinkState } from "../links/vm-links.ts";
import { TabNet } from "./tab-net.ts";
import type { ClusterGuest } from "../../protocol/tab/guest.ts";
import { type NodeControlRequest, NodeControls, NodeRequests, type NodeEvent, type NodeInit, type NodeReports, type NodeToPage, type PageToNode, watchNode } from "./node-protocol.ts";

export interface ClusterMachineLayout extends NodeReports {
  /** VM nodes in the whole cluster; node i hosts vCPU i. */
  nodes: number;
  /** The nodes that run in this tab. */
  local: number[];
  /**
   * Frames local nodes send to nodes in tabs this tab relays to (no direct VM channel), through the
   * main threads (the network keeps them in order per pair of tabs).
   */
  sendRemote: RemoteSend;
  /** The VM channel to `tab` closed (its tab left, or its net worker ended). */
  onChannelClosed?(tab: number): void;
  /**
   * Called by `boot` with the guest before any local node starts (tab 0 announces the images and
   * waits here for the other tabs to be ready, so no frame is ever sent to a tab without nodes).
   */
  prepare?(guest: ClusterGuest): Promise<void>;
  /**
   * This tab can no longer carry its nodes' frames (the net worker threw: a frame too large for a
   * ring, a backlog over its bound, a frame for a node no tab hosts, a bad message on a VM
   * channel). Its pump has stopped, so the VM must stop everywhere: its nodes would wait forever
   * for the frames it no longer moves.
   */
  onFatal?(why: string): void;
  /**
   * An elastic VM (issue 14): `nodes` is the most vCPUs it may have, and the firmware describes them
   * all. On tab 0, `boot` starts its local nodes 0..k-1 as the VM's first members (k = `local.length`,
   * vCPUs 0..k-1 present); on any other tab `boot` starts none: tab 0 starts each with `startNode`
   * when it joins the running VM, and ends it with `endNode` when it leaves.
   */
  elastic?: boolean;
  /** Whether local vCPUs block on their doorbells while they spin on the clock (default false; ServeOptions.spinWait). */
  spinWait?: boolean;
  /** What a local node reports on its own (node 0's hotplug device: ejects, _OST answers). */
  onNodeEvent?(node: number, event: NodeEvent): void;
  /**
   * Local node `node`'s own send channels, one per other tab it may send on directly (a fixed
   * cluster; links/node-channels.ts). Called by the spawn in the task that hands them to the node's
   * worker (the only task that may transfer them). None: the node sends everything through the net worker.
   */
  nodeChannels?(node: number): { tab: number; channel: RTCDataChannel; maxMessage: number }[];
}

/** Frames and bytes out and in between tabs, and of the frames out those local nodes sent on their own channels. */
export interface TabLinkCounters extends VmLinkCounters {
  nodeOut: number;
}

const START_TIMEOUT_MS = 120_000;

export class ClusterMachine {
  private readonly plan: TabPlan;
  private readonly net: TabNet | null;
  private workers = new Map<number, Worker>();
  private readonly stopFlag = new SharedArrayBuffer(4);
  /** The live view's controls, read by every local node (see NodeInit.control). */
  private readonly controls = new NodeControls();
  private guest: ClusterGuest | null = null;
  private onEvent: (event: VmEvent) => void = () => {};
  private readonly requests = new NodeRequests();
  /** Which tab runs each VM node (setRoutes), for the nodes' own channels. */
  private hostOf: (number | null)[] = [];
  /** Float64 [2 per node]: frames and bytes each local node sent on its own channels (NodeChannelsInit.sent). */
  private readonly nodeSent: Float64Array;

  constructor(private readonly layout: ClusterMachineLayout) {
    const { nodes, local } = layout;
    if (local.length < 1) throw new Error("a tab of the VM runs at least one node");
    if (typeof SharedArrayBuffer === "undefined" || !crossOriginIsolated)
      throw new Error("this page is not cross-origin isolated, so SharedArrayBuffer is unavailable (serve it with COOP/COEP headers)");
    this.plan = planTab(nodes, local);
    this.nodeSent = new Float64Array(new SharedArrayBuffer(16 * nodes));
    this.net =
      local.length < nodes
        ? new TabNet(this.plan, {
            relayOut: (from, to, frame) => {
              try {
                layout.sendRemote(from, to, frame);
              } catch (err) {
                this.fatal(err instanceof Error ? err.message : String(err));
              }
            },
            fatal: (why) => this.fatal(why),
            channelClosed: (tab) => layout.onChannelClosed?.(tab),
          })
        : null;
  }

  private fatal(why: string): void {
    if (this.layout.onFatal) this.layout.onFatal(why);
    else throw new Error(why);
  }

  /**
   * Frames to and from other tabs, in all and on direct channels: the net worker's last report (every
   * 250 ms) plus what the local nodes sent on their own channels (counted as they send).
   */
  get counters(): TabLinkCounters {
    const c = this.net?.counters ?? { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, directOut: 0, directIn: 0 };
    let frames = 0;
    let bytes = 0;
    for (let n = 0; n < this.layout.nodes; n++) {
      frames += this.nodeSent[2 * n]!;
      bytes += this.nodeSent[2 * n + 1]!;
    }
    return { ...c, framesOut: c.framesOut + frames, bytesOut: c.bytesOut + bytes, directOut: c.directOut + frames, nodeOut: frames };
  }

  /** Each other tab's link as the net worker last reported it: direct, relay, or not settled (null). */
  get vmLinks(): VmLinkState[] {
    return this.net?.links ?? [];
  }

  /** A frame from a node in another tab that came through the main thread. Allowed before `boot`: it waits in the ring. */
  deliver(from: number, to: number, frame: Uint8Array): void {
    if (!this.net) throw new RangeError(`this tab runs every node; no frame can come from node ${from}`);
    if (this.plan.local.includes(from)) throw new RangeError(`a frame from node ${from} came over the network, but node ${from} runs in this tab`);
    if (!this.plan.local.includes(to)) throw new RangeError(`a frame for node ${to} came to this tab, which does not run it`);
    this.net.relayIn(from, to, frame);
  }

  /** Ms since a frame from `tab` last came on this tab's VM channel to it (Infinity: none; liveness, see FabricMember.setAlsoHeard). */
  heardAgoMs(tab: number): number {
    return this.net?.heardAgoMs(tab) ?? Infinity;
  }

  /** Which tab runs each VM node (node -> tab, null: none), whenever it changes. */
  setRoutes(hostOf: (number | null)[]): void {
    this.hostOf = [...hostOf];
    this.net?.setRoutes(hostOf);
  }

  /**
   * This tab's end of the VM channel to `tab`, to its net worker; call in the task that created the
   * channel. Throws where the browser cannot transfer a data channel (the caller relays instead).
   */
  attachChannel(tab: number, channel: RTCDataChannel, maxMessage: number): void {
    if (!this.net) throw new Error("this tab runs every node and has no VM channel");
    this.net.addChannel(tab, channel, maxMessage);
  }

  /** This tab's end of remote node `node`'s own channel (it runs on `tab`), to the net worker; call in the creating task. */
  attachNodeChannel(tab: number, node: number, channel: RTCDataChannel): void {
    if (!this.net) throw new Error("this tab runs every node and has no VM channel");
    this.net.addNodeChannel(tab, node, channel);
  }

  /** This tab relays its frames for `tab` through the main thread (`why`: it has no channel). */
  relayTo(tab: number, why: string): void {
    this.net?.relayTo(tab, why);
  }

  /** What `tab` said about its end (its `vm-link` envelope). */
  theirPath(tab: number, direct: boolean, why?: string): void {
    this.net?.theirPath(tab, direct, why);
  }

  /** `count` round trips (ms) between this tab's net worker and `tab`'s on their direct VM channel. */
  pingVmLink(tab: number, count: number): Promise<number[]> {
    if (!this.net) return Promise.reject(new Error("this tab runs every node and has no VM channel"));
    return this.net.ping(tab, count);
  }

  /** `tab` left the cluster: forget its link (its id may come back as another tab). */
  dropTab(tab: number): void {
    this.net?.dropTab(tab);
  }

  async boot(guest: ClusterGuest, onEvent: (event: VmEvent) => void): Promise<void> {
    await this.layout.prepare?.(guest);
    this.guest = guest;
    this.onEvent = onEvent;
    const { nodes, local, elastic } = this.layout;
    if (elastic) {
      // Tab 0's slice is the VM's first members; other tabs' nodes start when they join.
      if (local.includes(0)) {
        const present = local.length;
        if (local.some((n) => n >= present)) throw new Error(`an elastic VM boots on tab 0's vCPUs 0..${present - 1}, not ${local.join(", ")}`);
        const members = Array.from({ length: present }, (_, i) => i);
        const vcpuNodes = Array.from({ length: nodes }, (_, i) => (i < present ? i : null));
        await Promise.all(local.map((self) => this.spawn(self, vcpuNodes, { possibleCpus: nodes, presentCpus: present, members, joining: false })));
      }
    } else {
      const vcpuNodes = Array.from({ length: nodes }, (_, i) => i);
      await Promise.all(local.map((self) => this.spawn(self, vcpuNodes)));
    }
    onEvent({ kind: "started" });
  }

  /** Starts local node `self` (it hosts vCPU `self`); resolves when it runs. */
  private spawn(self: number, vcpuNodes: (number | null)[], elastic?: NodeInit["elastic"]): Promise<void> {
    const guest = this.guest;
    if (!guest) throw new Error("the VM has not been set up on this tab");
    if (this.workers.has(self)) throw new Error(`node ${self} already runs in this tab`);
    // (Vite bundles a worker only from this literal `new Worker(new URL(...))` shape.)
    const worker = new Worker(new URL("./node-worker.ts", import.meta.url), { type: "module", name: `node${self}` });
    this.workers.set(self, worker);
    worker.addEventListener("message", (e: MessageEvent<NodeToPage>) => this.onNodeMessage(self, e.data));
    const started = watchNode(worker, { self, vcpu: self }, START_TIMEOUT_MS, this.onEvent, this.layout);
    // Every node builds its own v86 instance from its own copy of the images.
    const common = {
      kind: "init",
      plan: nodePlan(this.plan, self),
      wasm: guest.wasm.slice(0),
      vcpu: self,
      vcpuNodes,
      deviceNode: 0,
      stop: this.stopFlag,
      control: this.controls.cell,
      ...(this.layout.spinWait ? { spinWait: true } : {}),
      ...(elastic ? { elastic } : {}),
    } as const;
    const init: PageToNode =
      guest.kind === "linux"
        ? { ...common, guest: { kind: "firmware", firmware: guest.firmware.slice(0), bzImage: guest.bzImage.slice(0), initrd: guest.initrd.slice(0), cmdline: guest.cmdline, memoryMiB: guest.memoryMiB } }
        : { ...common, guest: { kind: "multiboot", elf: guest.elf.slice(0), cmdline: guest.cmdline, memoryMiB: guest.memoryMiB } };
    const ends = this.net ? (this.layout.nodeChannels?.(self) ?? []) : [];
    if (ends.length === 0) worker.postMessage(init);
    else {
      const withChannels = { ...init, channels: { ends, paths: this.net!.paths, hostOf: this.hostOf, sent: this.nodeSent.buffer as SharedArrayBuffer } };
      try {
        worker.postMessage(withChannels, ends.map((e) => e.channel as unknown as Transferable));
      } catch {
        // This browser cannot hand a data channel to a worker: the node sends through the net worker.
        for (const e of ends) e.channel.close();
        worker.postMessage(init);
      }
    }
    return started;
  }

  /** An elastic VM: starts local node `self`, joining the running VM with these members (tab 0 asks). */
  startNode(self: number, vcpuNodes: (number | null)[], members: number[]): Promise<void> {
    if (!this.layout.elastic) return Promise.reject(new Error("only an elastic VM starts nodes while it runs"));
    if (!this.layout.local.includes(self)) return Promise.reject(new RangeError(`node ${self} is not one of this tab's (${this.layout.local.join(", ")})`));
    if (vcpuNodes.length !== this.layout.nodes) return Promise.reject(new RangeError(`node ${self} must know a host for each of the ${this.layout.nodes} possible vCPUs, got ${vcpuNodes.length}`));
    return this.spawn(self, vcpuNodes, { possibleCpus: this.layout.nodes, presentCpus: 1, members, joining: true });
  }

  /** An elastic VM: local node `self` left the VM; its worker ends. */
  endNode(self: number): void {
    const w = this.workers.get(self);
    if (!w) throw new RangeError(`node ${self} does not run in this tab`);
    w.terminate();
    this.workers.delete(self);
  }

  /** Whether local node `self` runs. */
  runs(self: number): boolean {
    return this.workers.has(self);
  }

  /** A control request to a local node's worker (node-worker.ts); rejects with the node's error text. */
  control(self: number, request: NodeControlRequest): Promise<unknown> {
    return this.requests.send(this.workers.get(self), self, request);
  }


  private onNodeMessage(node: number, m: NodeToPage): void {
    if (!this.requests.answer(node, m) && m.kind === "event") this.layout.onNodeEvent?.(node, m.event);
  }

  /**
   * The latency knob for this tab's nodes: added one-way delay (0..50 ms) on every frame each local
   * node sends, to a node in this tab or another. The delay is applied there, in the nodes
   * (link-delay.ts), and nowhere else: the fabric's own link delay stays 0 for a VM. Why the nodes
   * and not the fabric's send side: the nodes' delay covers links inside a tab too (a tab with two
   * vCPUs), it is what the nodes' ping/pong round trip measures, and it leaves the console and the
   * cluster's control messages undelayed. ClusterVm sets the same value on every tab.
   */
  setLinkDelay(ms: number): void {
    this.controls.setLinkDelay(ms);
  }

  /** This tab's nodes record DSM and interrupt events (sent in their view reports) while this is on. */
  setTracing(on: boolean): void {
    this.controls.setTracing(on);
  }

  async serialInput(bytes: Uint8Array): Promise<void> {
    const w = this.workers.get(0);
    if (!w) throw new Error("node 0 (the UART) does not run in this tab");
    w.postMessage({ kind: "serial-input", bytes } satisfies PageToNode);
  }

  async stop(): Promise<void> {
    Atomics.store(new Int32Array(this.stopFlag), 0, 1);
    for (const w of this.workers.values()) w.postMessage({ kind: "stop" } satisfies PageToNode);
  }

  /** Ends every local node at once (also when a peer tab vanished and a node is blocked on it). */
  terminate(): void {
    this.net?.terminate();
    Atomics.store(new Int32Array(this.stopFlag), 0, 1);
    for (const w of this.workers.values()) w.terminate();
    this.workers.clear();
    this.requests.failAll("this tab's nodes ended");
  }
}
