// One VM over a cluster of tabs, as one tab runs it. Tab 0 (the tab that created the cluster)
// announces the images with their digests, waits until every tab hosting vCPUs has started its
// nodes, then boots; every tab carries its nodes' link frames over the fabric, shows node 0's
// console and sends its keys to node 0's UART. When a tab hosting vCPUs goes, the VM stops
// everywhere (its nodes hold pages and CPUs nobody else has: going on would hang or corrupt).

import type { VmEvent } from "./vm-api.ts";
import type { FabricEvent, FabricMember, Member } from "../../fabric/adapters/browser.ts";
import { type ClusterGuest, guestFromImages, guestImages, type ImageName } from "../../protocol/tab/guest.ts";
import { ClusterMachine, type ClusterMachineLayout } from "./cluster-machine.ts";
import { type ControlMessage, decodeWire, encodeWire, type ImageDigest, NO_WATCHER_RIGHTS, type WatcherRights, WIRE_CONSOLE_IN, WIRE_CONSOLE_OUT, WIRE_CONTROL, WIRE_VIEW, type WireMessage } from "../../protocol/tab/envelope.ts";
import type { NodeStatus, NodeViewReport } from "./node-protocol.ts";
import { describeFailure, type NodeFailure } from "../../protocol/tab/node-failure.ts";
import { decode, encode } from "../../protocol/codec.ts";
import type { StatsSnapshot } from "../../protocol/messages.ts";
import { ElasticHost } from "./elastic-host.ts";
import type { NodeEvent } from "../../protocol/tab/node-control.ts";
import { NODE_CHANNEL_BASE_ID, nodeChannelLabel } from "../links/node-channels.ts";

/** The part of FabricMember this module uses (a fake in unit tests). */
export type ClusterFabric = Pick<FabricMember, "tab" | "members" | "me" | "send" | "broadcast" | "onFrame" | "on" | "links" | "shape"> &
  Partial<Pick<FabricMember, "openSideChannel" | "setAlsoHeard">>;

export type ClusterVmState =
  | { phase: "waiting" }
  | { phase: "fetching"; what: string }
  | { phase: "booting" }
  | { phase: "running" }
  | { phase: "stopped"; reason: string }
  /** An elastic VM: this tab is out of it (it left, or tab 0 refused its vCPUs); the VM runs on. */
  | { phase: "left"; reason: string }
  /** `failure`: set when the VM stopped because a node failed (on any tab). */
  | { phase: "error"; message: string; failure?: NodeFailure & { tab: number } };

export interface ClusterVmDeps {
  fabric: ClusterFabric;
  fetchImage(url: string): Promise<ArrayBuffer>;
  onOutput(bytes: Uint8Array): void;
  onState(state: ClusterVmState): void;
  onStatus?(status: NodeStatus): void;
  /** Messages from peers that failed validation (dropped); shown in the page's log. */
  onInvalid?(why: string): void;
  /** Builds this tab's machine (default: ClusterMachine with real workers; a fake in unit tests). */
  makeMachine?(layout: ClusterMachineLayout): TabNodes;
  /** The live view of this tab: every node of the cluster (this tab's and the others') reports here. */
  view?: ClusterViewSink;
  /** Tab 0: what the creator lets watchers do (default: nothing beyond seeing). */
  watcherRights?: WatcherRights;
  /** What watchers may do, when this tab learns it (tab 0 at once, the others from tab 0's hello answer). */
  onRights?(rights: WatcherRights): void;
  /**
   * An elastic VM: the tab hosting each possible vCPU's node (null: offline), and the join or leave
   * under way ("" when none), on every tab whenever tab 0 says it changed.
   */
  onVmHosts?(hosts: (number | null)[], changing: string): void;
  /**
   * Tab 0 of an elastic VM: text in node 0's console that says the guest can take a CPU (its shell
   * prompt); joins before it are refused.
   */
  guestReadyText?: string;
  /**
   * How this tab carries node frames to other tabs (issue 15): `auto` (default) on data channels its
   * workers own wherever both tabs can, each node sending on its own in a fixed cluster; `pair` on
   * the net worker's one channel per pair of tabs only (`?vmlink=pair`, to weigh the nodes' own
   * channels side by side); `relay` through the main threads (`?vmlink=relay`, for comparison and
   * for the test of the fallback).
   */
  vmLink?: "auto" | "pair" | "relay";
  /** Whether this tab's vCPUs block on their doorbells while they spin on the clock (default false; ServeOptions.spinWait). */
  spinWait?: boolean;
}

/** The negotiated data channel between two tabs' net workers (the simple-peer channel has a low id; nodes' own: 1001 + node). */
const VM_CHANNEL = { label: "giantweb-vm", id: 1000 } as const;

/** The VM's live-view controls, the same on every tab (tab 0 orders the changes). */
export interface ClusterViewControls {
  delayMs: number;
  tracing: boolean;
}

/** Where ClusterVm delivers what the live view shows (the page turns these into ViewInputs). */
export interface ClusterViewSink {
  /** The VM's shape, when this tab learns it (tab 0 at boot, the others from its announcement). */
  config(vm: { vcpus: number; memoryMiB: number; guest: string }): void;
  /** A node's statistics snapshot, from this tab or another (already validated). */
  stats(snapshot: StatsSnapshot): void;
  /** A node's view report (page moves, IPI counts, trace events; wall-clock times). */
  report(report: NodeViewReport): void;
  /** The cluster's knob and trace settings changed (also when another tab changed them). */
  controls(c: ClusterViewControls): void;
  /**
   * An elastic VM: the tab running each possible vCPU's node (null: the vCPU is offline, no node),
   * and the join or leave under way ("" when none); on every tab, whenever tab 0 says it changed.
   */
  hosts?(hosts: (number | null)[], changing: string): void;
}

/** What ClusterVm needs of this tab's nodes. */
export type TabNodes = Pick<
  ClusterMachine,
  | "boot" | "deliver" | "serialInput" | "terminate" | "counters" | "setLinkDelay" | "setTracing" | "runs" | "control" | "startNode" | "endNode"
  | "setRoutes" | "attachChannel" | "attachNodeChannel" | "relayTo" | "theirPath" | "dropTab" | "vmLinks" | "pingVmLink"
> &
  Partial<Pick<ClusterMachine, "heardAgoMs">>;

/** How long tab 0 waits for the other tabs to fetch the images and start their nodes. */
const READY_TIMEOUT_MS = 600_000;
/** How long tab 0 waits for the hello of the tabs hosting vCPUs (admitted tabs may still be connecting). */
const LINKS_TIMEOUT_MS = 60_000;
/** How long tab 0 of an elastic VM waits for a leaving tab's vCPUs to go (the guest moves their tasks). */
const LEAVE_TIMEOUT_MS = 600_000;
/** How long a tab other than tab 0 of an elastic VM waits for tab 0's word on a tab that went. */
const ELASTIC_GRACE_MS = 3_000;

export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

const describeMember = (m: Member) => `tab ${m.tab}${m.vcpus.length ? ` (vCPU${m.vcpus.length > 1 ? "s" : ""} ${m.vcpus.join(", ")})` : " (watcher)"}`;

export class ClusterVm {
  private machine: TabNodes | null = null;
  private state: ClusterVmState = { phase: "waiting" };
  /** The tab hosting each vCPU (vCPU i is VM node i), frozen when the VM starts. */
  private hostOf: number[] = [];
  private readyWaiter: { missing: Set<number>; resolve(): void; reject(e: Error): void } | null = null;
  /** Tab 0: the tabs that said hello (they listen), and who waits for more. */
  private readonly listening = new Set<number>();
  private helloWaiter: (() => void) | null = null;
  /** Tab 0: the configuration it announced, for watchers that join while the VM runs. */
  private announced: { config: ControlMessage; to: Set<number> } | null = null;
  /** The live view's knob and trace settings, as tab 0 last ordered them. */
  private controls: ClusterViewControls = { delayMs: 0, tracing: false };
  /** Counts stops: a join still awaiting a fetch when the VM stopped must not go on to boot. */
  private run = 0;
  /** What watchers may do: the creator's choice on tab 0, tab 0's word elsewhere. */
  private rights: WatcherRights;
  /** An elastic VM (config.elastic): tabs join and leave while it runs. */
  private elastic = false;
  /** Tab 0 of an elastic VM: the joins and leaves. */
  private elasticHost: ElasticHost | null = null;
  /** An elastic VM: the tab hosting each vCPU's node (null: none), as tab 0 last said. */
  private vmHosts: (number | null)[] = [];
  private vmChanging = "";
  /** Tab 0 of an elastic VM: whether the guest can take CPUs yet, from its console. */
  private guestUp = false;
  private serialTail = "";
  /** The tabs this tab's machine has set up its end of the VM link to (issue 15). */
  private readonly vmLinkEnds = new Set<number>();
  /** What other tabs said about their ends (`vm-link`), kept for a machine that does not exist yet. */
  private readonly theirVmLinks = new Map<number, { direct: boolean; why?: string }>();
  /** A tab other than 0 of an elastic VM: its Leave waiting for tab 0's answer. */
  private leaveWaiter: { resolve(): void; reject(e: Error): void } | null = null;

  constructor(private readonly deps: ClusterVmDeps) {
    this.rights = deps.fabric.tab === 0 ? { ...(deps.watcherRights ?? NO_WATCHER_RIGHTS) } : { ...NO_WATCHER_RIGHTS };
    deps.fabric.onFrame((from, bytes) => this.onFrame(from, bytes));
    deps.fabric.on((e) => this.onFabric(e));
    // The hello tells tab 0 that this tab's link to it is open and that it listens; tab 0
    // announces the VM only to tabs that said it (a tab is in the roster before its link opens, and
    // a broadcast reaches only open links; the fabric keeps frames that come before a listener).
    if (deps.fabric.tab !== 0) this.send(0, { kind: "control", msg: { t: "hello" } });
  }

  /** What watchers may do (as tab 0 said; nothing until it did). */
  get watcherRights(): WatcherRights {
    return { ...this.rights };
  }

  /** Whether this tab may do `what` under the rights: tabs hosting vCPUs may; watchers if allowed. */
  private allowed(tab: number, what: keyof WatcherRights): boolean {
    return tab === 0 || this.hostsVcpus(tab) || this.rights[what];
  }

  get phase(): ClusterVmState["phase"] {
    return this.state.phase;
  }

  get counters() {
    return this.machine?.counters;
  }

  /** Round trips (ms) on the direct VM channel to `tab`, net worker to net worker (the bench's reference while the VM runs). */
  pingVmLink(tab: number, count: number): Promise<number[]> {
    if (!this.machine) return Promise.reject(new Error("no VM runs on this tab"));
    return this.machine.pingVmLink(tab, count);
  }

  /** How node frames go to each other tab: direct (net workers' channel), relay (main threads), or not settled (null). */
  get vmLinks() {
    return this.machine?.vmLinks ?? [];
  }

  private get isHost(): boolean {
    return this.deps.fabric.tab === 0;
  }

  private set(state: ClusterVmState): void {
    this.state = state;
    this.deps.onState(state);
  }

  private active(): boolean {
    return this.state.phase === "fetching" || this.state.phase === "booting" || this.state.phase === "running";
  }

  private send(tab: number, m: WireMessage): void {
    this.deps.fabric.send(tab, encodeWire(m));
  }

  private freezeHosts(): void {
    this.hostOf = [];
    for (const m of this.deps.fabric.members) for (const v of m.vcpus) this.hostOf[v] = m.tab;
  }

  private newMachine(total: number, prepare?: (guest: ClusterGuest) => Promise<void>): TabNodes {
    const me = this.deps.fabric.me;
    if (!me || me.vcpus.length === 0) throw new Error("this tab hosts no vCPU");
    const make = this.deps.makeMachine ?? ((layout: ClusterMachineLayout) => new ClusterMachine(layout));
    const machine = make({
      nodes: total,
      local: me.vcpus,
      ...(this.deps.spinWait ? { spinWait: true } : {}),
      ...(this.elastic ? { elastic: true, onNodeEvent: (node: number, e: NodeEvent) => this.elasticHost?.nodeEvent(node, e) } : {}),
      sendRemote: (from, to, frame) => {
        const tab = this.tabOfNode(to);
        if (tab === undefined) throw new Error(`no tab hosts node ${to}`);
        try {
          this.send(tab, { kind: "node-frame", from, to, payload: frame });
        } catch (err) {
          const m = this.deps.fabric.members.find((x) => x.tab === tab);
          throw new Error(`a frame from node ${from} to node ${to} cannot go: the link to ${m ? describeMember(m) : `tab ${tab}`} is closed (${(err as Error).message})`);
        }
      },
      prepare,
      onStatus: this.deps.onStatus,
      onStats: (frame) => this.localStats(frame),
      onView: (report) => this.localReport(report),
      onFailure: (f) => this.nodeFailed({ ...f, tab: this.deps.fabric.tab }, true),
      onFatal: (why) => this.stopEverywhere(`tab ${this.deps.fabric.tab} stopped the VM: ${why}`, true),
      onChannelClosed: (tab) => this.vmChannelClosed(tab),
      nodeChannels: (node) => this.nodeChannels(node),
    });
    machine.setLinkDelay(this.controls.delayMs);
    machine.setTracing(this.controls.tracing);
    // A tab whose main thread is too busy to answer pings is alive while its net worker talks.
    if (machine.heardAgoMs) this.deps.fabric.setAlsoHeard?.((tab) => machine.heardAgoMs!(tab));
    this.vmLinkEnds.clear();
    this.updateVmLinks(machine, total);
    return machine;
  }

  // ------------------------------------------------------------ the VM's links (issue 15)

  /**
   * Routes for the net worker, and this tab's end of the VM link to each tab hosting vCPUs whose
   * link is up: a channel handed to the net worker in this task (direct), or the relay when this
   * tab is told to relay, the transport has no such channel, or the browser cannot transfer it.
   * Each end tells the other in a `vm-link` envelope; a pair goes direct when both ends said so.
   */
  private updateVmLinks(machine = this.machine, total?: number): void {
    if (!machine) return;
    const nodes = total ?? (this.elastic ? this.deps.fabric.shape.totalVcpus : this.hostOf.length);
    machine.setRoutes(Array.from({ length: nodes }, (_, n) => this.tabOfNode(n) ?? null));
    const up = new Set(this.deps.fabric.links().filter((l) => l.state === "up").map((l) => l.tab));
    for (const m of this.deps.fabric.members) {
      if (m.tab === this.deps.fabric.tab || m.vcpus.length === 0 || !up.has(m.tab) || this.vmLinkEnds.has(m.tab)) continue;
      this.vmLinkEnds.add(m.tab);
      let why: string | null = null;
      if (this.deps.vmLink === "relay") why = "this tab was asked to relay (?vmlink=relay)";
      else {
        try {
          const side = this.deps.fabric.openSideChannel?.(m.tab, VM_CHANNEL.label, VM_CHANNEL.id) ?? null;
          if (!side) why = "its link to this tab has no second data channel";
          else {
            // The receiving ends of that tab's nodes' own channels, before this end says direct (a
            // node sends on its channel only once the pair is direct; node-channels.ts).
            if (this.usesNodeChannels()) {
              for (let k = 0; k < nodes; k++) {
                if (this.tabOfNode(k) !== m.tab) continue;
                const ch = this.deps.fabric.openSideChannel!(m.tab, nodeChannelLabel(k), NODE_CHANNEL_BASE_ID + k);
                if (ch) machine.attachNodeChannel(m.tab, k, ch.channel);
              }
            }
            machine.attachChannel(m.tab, side.channel, side.maxMessage);
          }
        } catch (err) {
          why = `this browser cannot hand a data channel to a worker (${(err as Error).message})`;
        }
      }
      if (why) machine.relayTo(m.tab, why);
      this.send(m.tab, { kind: "control", msg: why ? { t: "vm-link", direct: false, why } : { t: "vm-link", direct: true } });
      const theirs = this.theirVmLinks.get(m.tab);
      if (theirs) machine.theirPath(m.tab, theirs.direct, theirs.why);
    }
  }

  /**
   * Node frames go on each node's own channels in a fixed cluster whose tabs may go direct. (An
   * elastic VM's nodes come and go and change tabs, and a node keeps its channels for its life: its
   * frames go through the net worker.)
   */
  private usesNodeChannels(): boolean {
    return !this.elastic && (this.deps.vmLink ?? "auto") === "auto";
  }

  /** Local node `node`'s own send channels, one per other tab running nodes whose link is up (ClusterMachineLayout.nodeChannels). */
  private nodeChannels(node: number): { tab: number; channel: RTCDataChannel; maxMessage: number }[] {
    if (!this.usesNodeChannels()) return [];
    const up = new Set(this.deps.fabric.links().filter((l) => l.state === "up").map((l) => l.tab));
    const ends: { tab: number; channel: RTCDataChannel; maxMessage: number }[] = [];
    for (const m of this.deps.fabric.members) {
      if (m.tab === this.deps.fabric.tab || m.vcpus.length === 0 || !up.has(m.tab)) continue;
      try {
        const side = this.deps.fabric.openSideChannel?.(m.tab, nodeChannelLabel(node), NODE_CHANNEL_BASE_ID + node) ?? null;
        if (side) ends.push({ tab: m.tab, ...side });
      } catch {
        // No channel to that tab: the node's frames for it go through the net worker.
      }
    }
    return ends;
  }

  /**
   * The VM channel to `tab` closed. Frames lost with it would hang the VM, so unless the tab is
   * leaving (it went, or left the VM), the VM stops; another tab waits the grace tab 0's word needs.
   */
  private vmChannelClosed(tab: number): void {
    const check = () => {
      if (!this.live || !this.holdsPartOfVm(tab) || !this.deps.fabric.members.some((m) => m.tab === tab)) return;
      this.stopEverywhere(`the VM channel between tab ${this.deps.fabric.tab} and tab ${tab} closed while tab ${tab} runs part of the VM; the VM stopped`, true);
    };
    setTimeout(check, ELASTIC_GRACE_MS);
  }

  /** The tab running VM node `node` (node i hosts vCPU i): the roster's slices in an elastic VM, else as frozen at the start. */
  private tabOfNode(node: number): number | undefined {
    return this.elastic ? this.deps.fabric.members.find((m) => m.vcpus.includes(node))?.tab : this.hostOf[node];
  }

  // ------------------------------------------------------------ live view

  private get othersListen(): boolean {
    return this.deps.fabric.members.length > 1;
  }

  /** A local node's stats frame: to this tab's view, and unchanged to every other tab. */
  private localStats(frame: Uint8Array): void {
    let msg;
    try {
      msg = decode(frame);
    } catch (err) {
      this.deps.onInvalid?.(`from a node of this tab: ${(err as Error).message}`);
      return;
    }
    if (msg.type !== "stats") return;
    this.deps.view?.stats(msg);
    if (this.othersListen) this.deps.fabric.broadcast(encodeWire({ kind: "view", msg, frame }));
  }

  /** A local node's view report: to this tab's view, and encoded by the codec to every other tab. */
  private localReport(report: NodeViewReport): void {
    this.deps.view?.report(report);
    if (!this.othersListen) return;
    const msg = { type: "view-report" as const, ...report };
    try {
      this.deps.fabric.broadcast(encodeWire({ kind: "view", msg, frame: encode(msg) }));
    } catch (err) {
      this.deps.onInvalid?.(`a view report of node ${report.node} could not be encoded: ${(err as Error).message}`);
    }
  }

  /** The latency knob for the whole cluster (0..50 ms added one way on every VM node's sends). */
  setLinkDelay(ms: number): void {
    this.order({ t: "link-delay", ms });
  }

  /** Trace recording on every node of the cluster. */
  setTracing(on: boolean): void {
    this.order({ t: "tracing", on });
  }

  /** Tab 0 applies a setting and sends it to every tab; the others ask tab 0. */
  private order(msg: Extract<ControlMessage, { t: "link-delay" | "tracing" }>): void {
    if (!this.allowed(this.deps.fabric.tab, "control")) throw new Error("this tab watches: the cluster's creator has not allowed watchers to change the knob or tracing");
    if (this.isHost) {
      this.applyControl(msg);
      this.deps.fabric.broadcast(encodeWire({ kind: "control", msg }));
    } else this.send(0, { kind: "control", msg });
  }

  private applyControl(msg: Extract<ControlMessage, { t: "link-delay" | "tracing" }>): void {
    this.controls = msg.t === "link-delay" ? { ...this.controls, delayMs: msg.ms } : { ...this.controls, tracing: msg.on };
    this.machine?.setLinkDelay(this.controls.delayMs);
    this.machine?.setTracing(this.controls.tracing);
    this.deps.view?.controls({ ...this.controls });
  }

  // ------------------------------------------------------------ tab 0

  /**
   * Tab 0: boots the VM with this guest (images already fetched and checked by the caller) once
   * every tab hosting vCPUs has its images. `urls` are the paths the other tabs fetch them from.
   */
  async bootHost(guest: ClusterGuest, urls: Partial<Record<ImageName, string>>, opts: { elastic?: boolean } = {}): Promise<void> {
    if (!this.isHost) throw new Error("only the tab that created the cluster (tab 0) boots the VM");
    if (this.active()) throw new Error(`the VM is already ${this.state.phase}`);
    const elastic = opts.elastic === true;
    if (elastic && guest.kind !== "linux") throw new Error("an elastic VM runs the Linux guest (the self-test has no CPU hotplug)");
    const missing = this.missingVcpus();
    if (missing.length && !elastic) throw new Error(`no tab hosts vCPU${missing.length > 1 ? "s" : ""} ${missing.join(", ")} yet: share the join link`);
    this.elastic = elastic;
    this.freezeHosts();
    // An elastic VM boots on this tab's slice; the firmware describes every possible vCPU.
    const total = elastic ? this.deps.fabric.shape.totalVcpus : this.hostOf.length;
    const present = this.deps.fabric.me?.vcpus.length ?? 0;
    this.guestUp = false;
    this.serialTail = "";
    this.deps.view?.config({ vcpus: total, memoryMiB: guest.memoryMiB, guest: guest.kind });
    this.set({ phase: "booting" });
    try {
      this.machine = this.newMachine(total, async () => {
        const digests: ImageDigest[] = [];
        for (const [what, bytes] of guestImages(guest)) {
          const url = urls[what];
          if (url === undefined) throw new Error(`no URL for the ${what} image: the other tabs could not fetch it`);
          digests.push({ what, url, bytes: bytes.byteLength, sha256: await sha256Hex(bytes) });
        }
        const config: ControlMessage = { t: "config", guest: guest.kind, vcpus: total, memoryMiB: guest.memoryMiB, cmdline: guest.cmdline, images: digests, ...(elastic ? { elastic: true as const } : {}) };
        const envelope = encodeWire({ kind: "control", msg: config });
        // Checked with the joiners' own parser before it is announced: a config they would drop
        // (an image URL on another server, say) must stop the VM here and now, not leave it booting.
        try {
          decodeWire(envelope);
        } catch (err) {
          throw new Error(`the other tabs would refuse this VM's configuration: ${(err as Error).message}`);
        }
        // An elastic VM waits for nobody: a tab hosting vCPUs joins it once it runs.
        const others = new Set(elastic ? [] : this.deps.fabric.members.filter((m) => m.tab !== 0 && m.vcpus.length > 0).map((m) => m.tab));
        let resolveReady = () => {};
        const ready = new Promise<void>((resolve, reject) => {
          resolveReady = resolve;
          this.readyWaiter = { missing: others, resolve, reject };
          setTimeout(() => reject(new Error(`tabs ${[...others].join(", ")} did not start their vCPUs within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
        });
        await this.hellos([...others]);
        this.deps.fabric.broadcast(envelope);
        // The broadcast reached every open link (the fabric holds frames until a listener comes), so a
        // hello that comes later from one of these tabs needs no second announcement.
        this.announced = { config, to: new Set([...this.listening, ...this.deps.fabric.links().filter((l) => l.state === "up").map((l) => l.tab)]) };
        if (elastic) this.publishHosts(this.elasticHost!.hosts(), "");
        if (others.size === 0) resolveReady();
        try {
          await ready;
        } finally {
          this.readyWaiter = null;
        }
      });
      if (elastic) {
        const machine = this.machine;
        this.elasticHost = new ElasticHost({
          possibleCpus: total,
          present,
          local: machine,
          members: () => this.deps.fabric.members,
          send: (tab, msg) => this.send(tab, { kind: "control", msg }),
          failure: () => (this.state.phase === "error" ? this.state.message : this.state.phase === "stopped" ? this.state.reason : null),
          fatal: (why) => this.stopEverywhere(why, true),
          onHosts: (hosts, changing) => this.publishHosts(hosts, changing),
          guestReady: () => this.guestUp,
        });
      }
      await this.machine.boot(guest, (e) => this.onVmEvent(e));
    } catch (err) {
      // (When the VM already stopped, a tab left or a node failed, this does nothing: that cause stands.)
      this.stopEverywhere(`the VM failed to boot: ${(err as Error).message}`, true);
    }
  }

  /** Tab 0 of an elastic VM: shows the hosts here and tells every tab. */
  private publishHosts(hosts: (number | null)[], changing: string): void {
    this.setVmHosts(hosts, changing);
    if (this.live) this.deps.fabric.broadcast(encodeWire({ kind: "control", msg: { t: "vm-hosts", hosts, changing } }));
  }

  private setVmHosts(hosts: (number | null)[], changing: string): void {
    this.vmHosts = [...hosts];
    this.vmChanging = changing;
    this.deps.onVmHosts?.([...hosts], changing);
    this.deps.view?.hosts?.([...hosts], changing);
  }

  /** An elastic VM: the tab hosting each vCPU's node (null: offline), and the change under way. */
  get vmHostMap(): { hosts: (number | null)[]; changing: string } | null {
    return this.elastic ? { hosts: [...this.vmHosts], changing: this.vmChanging } : null;
  }

  /** Whether the VM is elastic (tabs join and leave while it runs). */
  get isElastic(): boolean {
    return this.elastic;
  }

  /**
   * A tab other than tab 0 of an elastic VM: asks tab 0 to take this tab's vCPUs out of the running
   * guest (it offlines them, their pages move to tabs that stay) and resolves when they are out; the
   * page then leaves the cluster, and the VM runs on. Rejects with tab 0's refusal, the VM running on.
   */
  leaveVm(): Promise<void> {
    if (this.isHost) return Promise.reject(new Error("tab 0 holds the devices and vCPU 0: it cannot leave the VM (Stop ends it)"));
    if (!this.elastic) return Promise.reject(new Error("this VM is not elastic: leaving the cluster stops it"));
    if (this.leaveWaiter) return Promise.reject(new Error("this tab's Leave is already in progress"));
    if (!this.live) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(() => reject(new Error(`tab 0 did not finish this tab's leave within ${LEAVE_TIMEOUT_MS / 1000} s`))), LEAVE_TIMEOUT_MS);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.leaveWaiter = null;
        f();
      };
      this.leaveWaiter = { resolve: () => done(resolve), reject: (e) => done(() => reject(e)) };
      try {
        this.send(0, { kind: "control", msg: { t: "leave-request" } });
      } catch (err) {
        this.leaveWaiter.reject(err as Error);
      }
    });
  }

  /** Waits until these tabs said hello (they are admitted before their links open and they listen). */
  private async hellos(tabs: number[]): Promise<void> {
    const deadline = Date.now() + LINKS_TIMEOUT_MS;
    for (;;) {
      const gone = tabs.filter((t) => !this.deps.fabric.members.some((m) => m.tab === t));
      if (gone.length) throw new Error(`tab${gone.length > 1 ? "s" : ""} ${gone.join(", ")} left before the VM started`);
      const waiting = tabs.filter((t) => !this.listening.has(t));
      if (waiting.length === 0) return;
      if (!this.active()) throw new Error("the VM stopped while waiting for the tabs");
      if (Date.now() > deadline) throw new Error(`tab${waiting.length > 1 ? "s" : ""} ${waiting.join(", ")} did not answer within ${LINKS_TIMEOUT_MS / 1000} s (their links did not open)`);
      await new Promise<void>((r) => {
        this.helloWaiter = r;
        setTimeout(r, 200);
      });
    }
  }

  /** vCPUs no tab hosts yet. */
  missingVcpus(): number[] {
    const hosted = new Set(this.deps.fabric.members.flatMap((m) => m.vcpus));
    const total = this.deps.fabric.shape.totalVcpus;
    return Array.from({ length: total }, (_, i) => i).filter((v) => !hosted.has(v));
  }

  private onVmEvent(e: VmEvent): void {
    switch (e.kind) {
      case "serial":
        // Node 0's UART: shown here and on every other tab.
        this.deps.onOutput(e.bytes);
        if (this.isHost) this.deps.fabric.broadcast(encodeWire({ kind: "console-out", bytes: e.bytes }));
        if (this.elastic && !this.guestUp && this.deps.guestReadyText) {
          this.serialTail = (this.serialTail + String.fromCharCode(...e.bytes)).slice(-256);
          this.guestUp = this.serialTail.includes(this.deps.guestReadyText);
        }
        break;
      case "started":
        // A tab joining an elastic VM runs when tab 0 says its vCPUs are in (vm-hosts).
        if (!this.elastic || this.isHost) this.set({ phase: "running" });
        break;
      case "stopped":
        this.set({ phase: "stopped", reason: "the VM stopped" });
        break;
      case "error":
        this.stopEverywhere(e.message, true);
        break;
    }
  }

  // ------------------------------------------------------------ every tab

  /** Keys typed in this tab's console: to node 0's UART, wherever it is. */
  input(bytes: Uint8Array): void {
    if (!this.active() || !this.allowed(this.deps.fabric.tab, "type")) return;
    if (this.isHost) void this.machine?.serialInput(bytes);
    else this.send(0, { kind: "console-in", bytes });
  }

  /** Stops the VM on every tab, with a reason every tab shows. */
  stop(reason = "stopped by the user"): void {
    // The user's stop is tab 0's; another tab leaves instead (which stops the VM if it hosts vCPUs).
    if (!this.isHost) throw new Error("only tab 0 stops the VM: this tab may leave the cluster (which stops the VM if it hosts vCPUs)");
    this.stopEverywhere(`${reason} (on tab ${this.deps.fabric.tab})`, false);
  }

  /** This tab leaves (the page then closes its fabric membership): its nodes end here; the others see it go. */
  leave(): void {
    this.halt(`this tab left the cluster`, false);
  }

  private stopEverywhere(reason: string, isError: boolean): void {
    const wasActive = this.live;
    this.halt(reason, isError);
    if (wasActive) this.deps.fabric.broadcast(encodeWire({ kind: "control", msg: { t: "stop", reason } }));
  }

  /**
   * A node failed: stop here and tell every tab. The failed node's tab tells all directly (the
   * mesh is full); tab 0 tells all again, for a tab whose link to that tab is down. A tab that
   * already stopped ignores it, so nothing echoes.
   */
  private nodeFailed(failure: NodeFailure & { tab: number }, local: boolean): void {
    if (!(this.active() || this.machine)) return;
    this.halt(describeFailure(failure), true, failure);
    if (local || this.isHost) this.deps.fabric.broadcast(encodeWire({ kind: "control", msg: { t: "node-failed", failure } }));
  }

  private halt(reason: string, isError: boolean, failure?: NodeFailure & { tab: number }): void {
    // The first cause stands: what follows from it (a frame that can no longer go, a late boot
    // error) must not replace it on the status line.
    if (!this.live) return;
    this.run++;
    this.readyWaiter?.reject(new Error(reason));
    this.elasticHost?.stop(reason);
    this.leaveWaiter?.reject(new Error(reason));
    this.machine?.terminate();
    this.machine = null;
    this.vmLinkEnds.clear();
    this.theirVmLinks.clear();
    this.set(isError ? { phase: "error", message: reason, ...(failure ? { failure } : {}) } : { phase: "stopped", reason });
  }

  /** Whether a VM runs (or is being set up) on this tab, so that a loss must stop it. */
  private get live(): boolean {
    return this.active() || this.machine !== null;
  }

  /** Whether `tab` hosts a vCPU of the VM (frozen at its start; the roster before). */
  private hostsVcpus(tab: number): boolean {
    return this.hostOf.includes(tab) || (this.deps.fabric.members.find((m) => m.tab === tab)?.vcpus.length ?? 0) > 0;
  }

  /**
   * Whether losing `tab` loses part of the VM: in an elastic VM, whether it runs a node of it (tab 0
   * knows at once; the others as tab 0 last said); otherwise whether it hosts vCPUs.
   */
  private holdsPartOfVm(tab: number, member?: Member): boolean {
    if (!this.elastic) return member ? member.vcpus.length > 0 : this.hostsVcpus(tab);
    return this.elasticHost ? this.elasticHost.hostsNode(tab) : this.vmHosts.includes(tab);
  }

  /** Whether this tab runs a node of the VM (so carries node frames). */
  private get runsNodes(): boolean {
    return this.elastic ? this.holdsPartOfVm(this.deps.fabric.tab) : (this.deps.fabric.me?.vcpus.length ?? 0) > 0;
  }

  private onFabric(e: FabricEvent): void {
    if (e.type === "roster" || e.type === "link-up") this.updateVmLinks();
    if (e.type === "member-left") {
      this.vmLinkEnds.delete(e.member.tab);
      this.theirVmLinks.delete(e.member.tab);
      this.machine?.dropTab(e.member.tab);
      // Its nodes held pages and CPUs nobody else has. Every remaining tab is told, not only the
      // ones that saw it go: a lost link between two tabs is seen by those two alone.
      this.elasticHost?.tabGone(e.member.tab);
      const lost = () => {
        if (!(this.holdsPartOfVm(e.member.tab, e.member) && this.live)) return;
        const why = `${describeMember(e.member)} left the cluster (${e.reason}); the VM stopped (seen on tab ${this.deps.fabric.tab})`;
        // A watcher carries no node frames: what it sees alone, it keeps to itself.
        if (this.runsNodes) this.stopEverywhere(why, true);
        else this.halt(why, true);
      };
      // In an elastic VM tab 0 knows at once whether the tab still ran a node; another tab waits a
      // moment for tab 0's word (a tab that left the VM goes as soon as tab 0 lets it, and its link
      // may close here before tab 0's vm-hosts without it arrives). A lost node stops the VM anyway.
      if (this.elastic && !this.isHost) setTimeout(lost, ELASTIC_GRACE_MS);
      else lost();
      if (this.readyWaiter) this.readyWaiter.missing.delete(e.member.tab);
      this.listening.delete(e.member.tab);
    } else if (e.type === "link-down") {
      // Node frames flow only between tabs hosting vCPUs; a watcher's link carries the console.
      if (this.live && this.holdsPartOfVm(e.tab) && this.runsNodes) {
        const m = this.deps.fabric.members.find((x) => x.tab === e.tab);
        const why = `the link between tab ${this.deps.fabric.tab} and ${m ? describeMember(m) : `tab ${e.tab}`} went down (${e.reason}); the VM stopped`;
        // The fabric follows a closed link with member-left at once when the tab is gone (a goodbye,
        // a crash): that names the cause better, so it goes first; a link lost alone stops it here.
        // (In an elastic VM, after the grace a tab that left the VM needs: see member-left.)
        const check = () => this.live && this.holdsPartOfVm(e.tab) && this.stopEverywhere(why, true);
        if (this.elastic && !this.isHost) setTimeout(check, ELASTIC_GRACE_MS);
        else queueMicrotask(check);
      }
    } else if (e.type === "ended" && this.live) {
      this.halt(`the cluster ended (${e.error.message}); the VM stopped`, true);
    }
  }

  /**
   * A frame from `from` that this tab cannot use. Node frames travel in order and are never
   * resent, so while a VM runs, one lost from a tab hosting vCPUs would leave a node waiting
   * forever: the VM stops everywhere, saying why. From a watcher, or with no VM, it is dropped.
   */
  private unusable(from: number, why: string, mayBeNodeFrame: boolean): void {
    if (mayBeNodeFrame && this.live && this.hostsVcpus(from)) {
      this.stopEverywhere(`tab ${from} sent a frame tab ${this.deps.fabric.tab} cannot use (${why}); a lost frame would hang the VM, so it stopped`, true);
      return;
    }
    this.deps.onInvalid?.(`from tab ${from}: ${why}`);
  }

  private onFrame(from: number, bytes: Uint8Array): void {
    let m: WireMessage;
    try {
      m = decodeWire(bytes);
    } catch (err) {
      // Only a node frame, or one whose kind is unknown (it may have been one), is a loss that hangs.
      const kind = bytes[0];
      const known = kind === WIRE_CONSOLE_OUT || kind === WIRE_CONSOLE_IN || kind === WIRE_CONTROL || kind === WIRE_VIEW;
      this.unusable(from, (err as Error).message, !known);
      return;
    }
    const sender = this.deps.fabric.members.find((x) => x.tab === from);
    if (m.kind === "node-frame") {
      if (!sender?.vcpus.includes(m.from)) return this.unusable(from, `a frame claims node ${m.from}, which tab ${from} does not host`, true);
      if (!this.machine) return; // the VM stopped here; late frames are dropped
      try {
        this.machine.deliver(m.from, m.to, m.payload.slice());
      } catch (err) {
        this.unusable(from, `its frame from node ${m.from} to node ${m.to} could not be delivered: ${(err as Error).message}`, true);
      }
      return;
    }
    try {
      switch (m.kind) {
        case "console-out":
          if (from !== 0) throw new Error("console output from a tab other than tab 0");
          if (!this.isHost) this.deps.onOutput(m.bytes.slice());
          break;
        case "console-in":
          if (!this.isHost) throw new Error("console input sent to a tab other than tab 0");
          if (!this.allowed(from, "type")) throw new Error(`tab ${from} watches and may not type: the creator has not allowed it`);
          if (this.state.phase === "running" || this.state.phase === "booting") void this.machine?.serialInput(m.bytes.slice());
          break;
        case "control":
          this.onControl(from, m.msg);
          break;
        case "view":
          // VM node i hosts vCPU i: a tab reports only the nodes it hosts.
          if (!sender?.vcpus.includes(m.msg.node)) throw new Error(`a live-view ${m.msg.type} claims node ${m.msg.node}, which tab ${from} does not host`);
          if (m.msg.type === "stats") this.deps.view?.stats(m.msg);
          else {
            const { type: _, ...report } = m.msg;
            this.deps.view?.report(report);
          }
          break;
      }
    } catch (err) {
      this.deps.onInvalid?.(`from tab ${from}: ${(err as Error).message}`);
    }
  }

  private onControl(from: number, msg: ControlMessage): void {
    switch (msg.t) {
      case "config":
        if (from !== 0 || this.isHost) throw new Error("a VM configuration from a tab other than tab 0");
        void this.join(msg);
        break;
      case "hello":
        if (!this.isHost) throw new Error("a hello sent to a tab other than tab 0");
        this.listening.add(from);
        this.helloWaiter?.();
        // A watcher that joined while the VM runs: tell it what runs, so it shows the console.
        // In an elastic VM, so does a tab hosting vCPUs: it joins the running VM with them.
        if (this.announced && this.active() && !this.announced.to.has(from) && (this.elastic || this.deps.fabric.members.find((m) => m.tab === from)?.vcpus.length === 0)) {
          this.announced.to.add(from);
          this.send(from, { kind: "control", msg: this.announced.config });
          if (this.elastic) this.send(from, { kind: "control", msg: { t: "vm-hosts", hosts: this.vmHosts, changing: this.vmChanging } });
        }
        this.send(from, { kind: "control", msg: { t: "rights", rights: this.rights } });
        // The live view's settings as they are now, so its knob shows them and its nodes apply them.
        if (this.controls.delayMs !== 0) this.send(from, { kind: "control", msg: { t: "link-delay", ms: this.controls.delayMs } });
        if (this.controls.tracing) this.send(from, { kind: "control", msg: { t: "tracing", on: true } });
        break;
      case "ready": {
        if (!this.isHost) throw new Error("a ready message sent to a tab other than tab 0");
        if (this.elastic) {
          if (!this.deps.fabric.members.find((m) => m.tab === from)?.vcpus.length) throw new Error(`tab ${from} is ready to join but hosts no vCPU`);
          if (!this.elasticHost || this.state.phase !== "running") {
            this.send(from, { kind: "control", msg: { t: "join-refused", reason: `the VM is ${this.state.phase}, not running` } });
            return;
          }
          this.elasticHost.joinWhenReady(from);
          return;
        }
        const w = this.readyWaiter;
        if (!w) return;
        w.missing.delete(from);
        if (w.missing.size === 0) w.resolve();
        break;
      }
      case "refuse":
        if (!this.isHost) throw new Error("a refusal sent to a tab other than tab 0");
        // An elastic VM does not wait for any tab: one that cannot join is its own loss.
        if (this.elastic) throw new Error(`tab ${from} cannot join: ${msg.reason}`);
        this.stopEverywhere(`tab ${from} cannot take part: ${msg.reason}`, true);
        break;
      case "stop":
        // From tab 0 (its user, or what it saw fail) or a tab hosting vCPUs (what it saw fail;
        // leaving is how its user stops). A watcher cannot stop the VM.
        if (from !== 0 && !this.hostsVcpus(from)) throw new Error(`tab ${from} watches and may not stop the VM`);
        if (this.live) this.halt(msg.reason, !/stopped by the user/.test(msg.reason));
        break;
      case "rights":
        if (from !== 0 || this.isHost) throw new Error("watcher rights from a tab other than tab 0");
        this.rights = { ...msg.rights };
        this.deps.onRights?.({ ...this.rights });
        break;
      case "node-failed": {
        const f = msg.failure;
        // From the failed node's own tab, or relayed by tab 0; VM node i hosts vCPU i.
        const host = this.deps.fabric.members.find((m) => m.tab === f.tab);
        if (from !== f.tab && from !== 0) throw new Error(`tab ${from} reports a failure of tab ${f.tab}'s node ${f.node}`);
        if (host && !host.vcpus.includes(f.node)) throw new Error(`a failure of node ${f.node}, which tab ${f.tab} does not host`);
        if (f.vcpu !== null && f.vcpu !== f.node) throw new Error(`a failure of node ${f.node} names vCPU ${f.vcpu}; node ${f.node} hosts vCPU ${f.node}`);
        this.nodeFailed(f, false);
        break;
      }
      case "vm-hosts": {
        if (from !== 0 || this.isHost) throw new Error("a vm-hosts message from a tab other than tab 0");
        if (!this.elastic) throw new Error("a vm-hosts message for a VM that is not elastic");
        if (msg.hosts.length !== this.deps.fabric.shape.totalVcpus) throw new Error(`vm-hosts lists ${msg.hosts.length} vCPUs, the cluster has ${this.deps.fabric.shape.totalVcpus}`);
        this.setVmHosts(msg.hosts, msg.changing);
        // This tab joined: its vCPUs are in and the change is over.
        const mine = this.deps.fabric.me?.vcpus ?? [];
        if (this.state.phase === "booting" && mine.length && mine.every((v) => msg.hosts[v] === this.deps.fabric.tab) && msg.changing === "") this.set({ phase: "running" });
        break;
      }
      case "vm-link": {
        if (!this.hostsVcpus(from)) throw new Error(`tab ${from} hosts no vCPU, so it carries no node frames`);
        if (this.theirVmLinks.has(from)) throw new Error(`tab ${from} said twice how it carries node frames`);
        const theirs = msg.direct ? { direct: true } : { direct: false, why: msg.why };
        this.theirVmLinks.set(from, theirs);
        if (this.machine && this.vmLinkEnds.has(from)) this.machine.theirPath(from, theirs.direct, theirs.why);
        break;
      }
      case "join-refused":
        if (from !== 0 || this.isHost) throw new Error("a join refusal from a tab other than tab 0");
        if (this.vmHosts.includes(this.deps.fabric.tab)) throw new Error("tab 0 refused this tab's join, but its nodes are in the VM");
        this.outOfVm(`tab 0 refused this tab's vCPUs: ${msg.reason}. The VM runs on without them`);
        break;
      case "leave-request":
        if (!this.isHost) throw new Error("a leave request sent to a tab other than tab 0");
        if (!this.elasticHost || !this.live) this.send(from, { kind: "control", msg: { t: "leave-refused", reason: "no elastic VM runs: leaving the cluster is enough" } });
        else this.elasticHost.requestLeave(from);
        break;
      case "leave-done":
        if (from !== 0 || this.isHost) throw new Error("a leave-done from a tab other than tab 0");
        this.outOfVm("this tab left the VM; it runs on without this tab's vCPUs");
        this.leaveWaiter?.resolve();
        break;
      case "leave-refused":
        if (from !== 0 || this.isHost) throw new Error("a leave refusal from a tab other than tab 0");
        if (!this.leaveWaiter) throw new Error(`tab 0 refused a leave this tab did not ask for (${msg.reason})`);
        this.leaveWaiter.reject(new Error(msg.reason));
        break;
      case "node-start":
      case "node-control":
      case "node-end":
        if (from !== 0 || this.isHost) throw new Error(`a ${msg.t} request from a tab other than tab 0`);
        void this.serveNodeRequest(msg);
        break;
      case "node-reply":
        if (!this.isHost || !this.elasticHost) throw new Error("a node-reply sent to a tab that asked nothing");
        this.elasticHost.onReply(from, msg);
        break;
      case "link-delay":
      case "tracing":
        // Tab 0 orders every change (a request from any tab); the others apply what tab 0 sends.
        if (this.isHost) {
          if (!this.allowed(from, "control")) throw new Error(`tab ${from} watches and may not change the ${msg.t === "tracing" ? "tracing" : "knob"}: the creator has not allowed it`);
          this.order(msg);
        } else if (from === 0) this.applyControl(msg);
        else throw new Error(`a ${msg.t} setting from tab ${from}; only tab 0 sends settings to the tabs`);
        break;
    }
  }

  /** A tab other than tab 0: fetch and check the announced images, start this tab's nodes, say ready. */
  private async join(config: Extract<ControlMessage, { t: "config" }>): Promise<void> {
    const me = this.deps.fabric.me;
    if (this.active()) {
      this.deps.onInvalid?.("tab 0 announced a VM while one is already running here");
      return;
    }
    this.freezeHosts();
    this.elastic = config.elastic === true;
    this.deps.view?.config({ vcpus: config.vcpus, memoryMiB: config.memoryMiB, guest: config.guest });
    if (!me || me.vcpus.length === 0) {
      this.set({ phase: "running" }); // a watcher: it shows the console, runs nothing
      return;
    }
    const run = this.run;
    const stopped = () => run !== this.run;
    try {
      const got: Partial<Record<ImageName, ArrayBuffer>> = {};
      for (const d of config.images) {
        this.set({ phase: "fetching", what: d.what });
        let buf: ArrayBuffer;
        try {
          buf = await this.deps.fetchImage(d.url);
        } catch (err) {
          throw new Error(`cannot fetch the ${d.what} from ${d.url}: ${(err as Error).message}`);
        }
        const sha = await sha256Hex(buf);
        if (stopped()) return; // the VM stopped (and said why) while this tab fetched
        if (buf.byteLength !== d.bytes || sha !== d.sha256)
          throw new Error(
            `the ${d.what} at ${d.url} differs from tab 0's (here ${buf.byteLength} bytes, sha256 ${sha.slice(0, 12)}…; tab 0 ${d.bytes} bytes, ${d.sha256.slice(0, 12)}…): every tab must load the same build`,
          );
        got[d.what] = buf;
      }
      const guest = guestFromImages(config.guest, got, config.cmdline, config.memoryMiB);
      const expected = this.elastic ? this.deps.fabric.shape.totalVcpus : this.hostOf.length;
      if (config.vcpus !== expected) throw new Error(`tab 0 boots ${config.vcpus} vCPUs but the ${this.elastic ? "cluster's most" : "roster lists"} ${expected}`);
      this.set({ phase: "booting" });
      this.machine = this.newMachine(config.vcpus);
      // (An elastic VM's nodes start here when tab 0 asks, after this tab said it is ready.)
      await this.machine.boot(guest, (e) => this.onVmEvent(e));
      if (stopped()) return;
      if (this.elastic) await this.linksToVm();
      if (stopped()) return;
      this.send(0, { kind: "control", msg: { t: "ready", vcpus: me.vcpus } });
    } catch (err) {
      if (stopped()) return;
      const reason = (err as Error).message;
      // An elastic VM runs without this tab (no node of it started): it only goes.
      if (this.elastic) return this.outOfVm(`this tab could not join the VM: ${reason}. The VM runs on without it`);
      this.send(0, { kind: "control", msg: { t: "refuse", reason } });
      this.halt(reason, true);
    }
  }

  /** Waits until this tab has open links to every tab running a node of the VM (their frames come at once). */
  private async linksToVm(): Promise<void> {
    const deadline = Date.now() + LINKS_TIMEOUT_MS;
    for (;;) {
      const up = new Set(this.deps.fabric.links().filter((l) => l.state === "up").map((l) => l.tab));
      const waiting = [...new Set(this.vmHosts)].filter((t): t is number => t !== null && t !== this.deps.fabric.tab && !up.has(t));
      if (waiting.length === 0) return;
      if (!this.live) throw new Error("the VM stopped while this tab waited for its links");
      if (Date.now() > deadline) throw new Error(`the links to tab${waiting.length > 1 ? "s" : ""} ${waiting.join(", ")} did not open within ${LINKS_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A tab other than tab 0 of an elastic VM: carries out tab 0's request for one of its nodes, and answers. */
  private async serveNodeRequest(msg: Extract<ControlMessage, { t: "node-start" | "node-control" | "node-end" }>): Promise<void> {
    let reply: ControlMessage;
    try {
      const machine = this.machine;
      if (!machine || !this.elastic) throw new Error("no elastic VM runs on this tab");
      let value: unknown = null;
      if (msg.t === "node-start") {
        await this.linksToVm();
        await machine.startNode(msg.node, msg.vcpuNodes, msg.members);
      } else if (msg.t === "node-control") value = await machine.control(msg.node, msg.request);
      else machine.endNode(msg.node);
      reply = { t: "node-reply", id: msg.id, ok: true, value: value ?? null };
    } catch (err) {
      reply = { t: "node-reply", id: msg.id, ok: false, error: ((err as Error).message ?? String(err)).slice(0, 4000) };
    }
    try {
      this.send(0, { kind: "control", msg: reply });
    } catch (err) {
      this.deps.onInvalid?.(`the answer to tab 0's ${msg.t} for node ${msg.node} could not go: ${(err as Error).message}`);
    }
  }

  /** An elastic VM goes on without this tab (it left, or was refused): its nodes end, it stops nothing. */
  private outOfVm(reason: string): void {
    if (!this.live) return;
    this.run++;
    this.machine?.terminate();
    this.machine = null;
    this.set({ phase: "left", reason });
  }
}
