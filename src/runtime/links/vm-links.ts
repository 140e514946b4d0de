// This tab's end of the VM's links to other tabs, as its net worker runs them (issue 15). The
// TabBridge moves frames between the local nodes' rings and the network; this decides, per other
// tab, which way the network is: `direct` on a data channel this worker owns (no main thread on
// either side), or `relay` through the main threads (the fabric's link, as before net workers).
// On a direct pair, each remote node may also send on a channel of its own (node-channels.ts):
// this end reads those too, one reader per node, and publishes each pair's settled path so that
// local nodes know when they may send on theirs.
// A pair of tabs goes direct only when both ends say so; until its path is settled, frames for that
// tab wait in their rings. The path never changes once settled: frames sent one way must not be
// overtaken by frames sent the other. No timers and no DOM: the worker entry (net-worker.ts) wires
// real channels to it, and tests wire fakes.

import { encodeVmFrame, encodeVmProbe, VmChannelError, type VmFrame, VmFrameReader } from "../../protocol/tab/vm-channel.ts";
import { hopSeen, hopTracedFrame } from "./hop-trace.ts";
import { TabBridge, type TabPlan } from "./tab-bridge.ts";

/** The part of an RTCDataChannel the links use. */
export interface VmPort {
  send(message: Uint8Array): void;
  readonly bufferedAmount: number;
  /** A negotiated channel handed over at creation is "connecting" for a moment: nothing may be sent until it opens. */
  readonly open: boolean;
}

export type VmPath = "direct" | "relay";

export interface VmLinkCounters {
  framesOut: number;
  framesIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Of the frames above, those that went or came on a direct channel (the rest crossed the main threads). */
  directOut: number;
  directIn: number;
}

export interface VmLinksOptions {
  /** A frame for a tab whose path is `relay`: the main thread sends it as a `node-frame` envelope. */
  relay(from: number, to: number, frame: Uint8Array): void;
  /** Hold frames for a tab while its channel buffers more than this (bytes; default 1 MiB). */
  highWaterBytes?: number;
  /** The answer to a `ping` this end sent on the channel to `tab`. */
  onPong?(tab: number, id: number): void;
  /** The path to `tab` as it is now (null: not settled), after every change (the nodes' path cells). */
  onPath?(tab: number, path: VmPath | null): void;
}

/** Why a pair's path is what it is, per tab, for the page's roster. */
export interface VmLinkState {
  tab: number;
  /** null while the two ends have not both said how they carry frames. */
  path: VmPath | null;
  why?: string;
}

interface Peer {
  port: VmPort | null;
  maxMessage: number;
  reader: VmFrameReader | null;
  /** What this end offers (direct when it has a channel) and what the other end said. */
  mine: VmPath | null;
  theirs: VmPath | null;
  why?: string;
  /** Pongs owed while this end is not open yet (the other end's may open, and send, first). */
  pongs: number[];
  /** Readers of the remote nodes' own channels to this tab, by node. */
  nodeReaders: Map<number, VmFrameReader>;
}

export class VmLinks {
  private readonly bridge: TabBridge;
  private readonly peers = new Map<number, Peer>();
  /** hostOf[node]: the tab running VM node `node` (undefined or null: none). */
  private hostOf: (number | null)[] = [];
  private readonly highWater: number;
  private directOut = 0;
  private directIn = 0;

  constructor(
    private readonly plan: TabPlan,
    private readonly opts: VmLinksOptions,
  ) {
    this.highWater = opts.highWaterBytes ?? 1 << 20;
    this.bridge = new TabBridge(plan, (from, to, frame) => this.send(from, to, frame));
  }

  /** Frames and bytes both ways as the bridge counts them, and how many of those frames went direct. */
  get counters(): VmLinkCounters {
    return { ...this.bridge.counters, directOut: this.directOut, directIn: this.directIn };
  }

  /** The bridge's bell: local nodes ring it when they write for a remote node. */
  get bell() {
    return this.bridge.bell;
  }

  /** Which tab runs each VM node, as the roster says now (changes as tabs join and leave an elastic VM). */
  setRoutes(hostOf: readonly (number | null)[]): void {
    if (hostOf.length > this.plan.nodes) throw new RangeError(`routes for ${hostOf.length} nodes, but the VM has ${this.plan.nodes}`);
    this.hostOf = [...hostOf];
  }

  private peer(tab: number): Peer {
    let p = this.peers.get(tab);
    if (!p) {
      p = { port: null, maxMessage: 0, reader: null, mine: null, theirs: null, pongs: [], nodeReaders: new Map() };
      this.peers.set(tab, p);
    }
    return p;
  }

  /** This end's channel to `tab` exists (the other end may not have created its end yet). */
  addChannel(tab: number, port: VmPort, maxMessage: number): void {
    const p = this.peer(tab);
    if (p.port) throw new Error(`tab ${tab} already has a VM channel here`);
    if (p.mine) throw new Error(`this tab already said how it reaches tab ${tab}`);
    p.port = port;
    p.maxMessage = maxMessage;
    p.reader = new VmFrameReader(this.bridge.maxInboundFrame);
    p.mine = "direct";
    this.opts.onPath?.(tab, this.pathTo(tab));
  }

  /**
   * This end of remote node `node`'s own channel to this tab (on the link to `tab`). Added before
   * this end says it goes direct: the node sends on it only once the pair's path is direct.
   */
  addNodeChannel(tab: number, node: number): void {
    const p = this.peer(tab);
    if (p.nodeReaders.has(node)) throw new Error(`node ${node}'s channel from tab ${tab} is already here`);
    p.nodeReaders.set(node, new VmFrameReader(this.bridge.maxInboundFrame));
  }

  /** This end relays its frames for `tab` through the main thread (it has no channel: `why`). */
  relayTo(tab: number, why: string): void {
    const p = this.peer(tab);
    if (p.mine) throw new Error(`this tab already said how it reaches tab ${tab}`);
    p.mine = "relay";
    p.why = why;
    this.opts.onPath?.(tab, this.pathTo(tab));
  }

  /** What the other end said (a `vm-link` envelope). */
  theirPath(tab: number, path: VmPath, why?: string): void {
    const p = this.peer(tab);
    if (p.theirs && p.theirs !== path) throw new Error(`tab ${tab} said it carries frames ${p.theirs}, then ${path}`);
    p.theirs = path;
    if (path === "relay" && why) p.why = `tab ${tab}: ${why}`;
    this.opts.onPath?.(tab, this.pathTo(tab));
  }

  /** The settled path to `tab`, or null. */
  pathTo(tab: number): VmPath | null {
    const p = this.peers.get(tab);
    if (!p?.mine || !p.theirs) return null;
    return p.mine === "direct" && p.theirs === "direct" ? "direct" : "relay";
  }

  states(): VmLinkState[] {
    return [...this.peers.keys()].sort((a, b) => a - b).map((tab) => {
      const path = this.pathTo(tab);
      const why = this.peers.get(tab)!.why;
      return path === "relay" && why ? { tab, path, why } : { tab, path };
    });
  }

  /** The tab left the cluster: forget its channel and path (its tab id may come back as a new tab). */
  dropTab(tab: number): void {
    this.peers.delete(tab);
    this.opts.onPath?.(tab, null);
  }

  /** Moves what local nodes wrote for remote ones; returns how many frames. */
  pump(): number {
    for (const p of this.peers.values())
      if (p.pongs.length && p.port?.open) for (const id of p.pongs.splice(0)) p.port.send(encodeVmProbe("pong", id));
    return this.bridge.pump((_from, to) => {
      const tab = this.hostOf[to];
      // A frame for a node no tab runs: let it through, so send() reports it.
      if (tab === undefined || tab === null) return true;
      const path = this.pathTo(tab);
      if (path === "relay") return true;
      if (path === null) return false;
      const port = this.peers.get(tab)!.port!;
      return port.open && port.bufferedAmount < this.highWater;
    });
  }

  /** Retries inbound frames a full ring could not take. */
  flush(): boolean {
    return this.bridge.flush();
  }

  private send(from: number, to: number, frame: Uint8Array): void {
    const tab = this.hostOf[to];
    if (tab === undefined || tab === null) throw new Error(`node ${from} sent a frame to node ${to}, which no tab runs`);
    const p = this.peers.get(tab);
    if (this.pathTo(tab) === "direct") {
      if (hopTracedFrame(frame)) hopSeen("net-out");
      for (const chunk of encodeVmFrame(from, to, frame, p!.maxMessage)) p!.port!.send(chunk);
      this.directOut++;
    } else this.opts.relay(from, to, frame);
  }

  /** Sends a round-trip probe on the channel to `tab` (its pong comes to `onPong`); false when there is no channel. */
  ping(tab: number, id: number): boolean {
    const p = this.peers.get(tab);
    if (!p?.port?.open || this.pathTo(tab) !== "direct") return false;
    p.port.send(encodeVmProbe("ping", id));
    return true;
  }

  /**
   * A message on the direct channel from `tab`. Throws (VmChannelError, or the bridge's errors) when
   * it cannot be used: a frame lost there would hang the VM, so the caller stops it.
   */
  fromChannel(tab: number, message: Uint8Array): void {
    const p = this.peers.get(tab);
    if (!p?.reader) throw new VmChannelError(`tab ${tab} sent on a VM channel this tab does not have`);
    const got = p.reader.read(message);
    if (!got) return;
    if (got.kind !== "frame") {
      // A message can arrive before this end's own open event (each end opens on its own).
      if (got.kind === "ping") {
        if (p.port!.open && p.pongs.length === 0) p.port!.send(encodeVmProbe("pong", got.id));
        else if (p.pongs.length < 64) p.pongs.push(got.id);
        else throw new VmChannelError(`tab ${tab} sent more than 64 pings before this end of the channel opened`);
      }
      else this.opts.onPong?.(tab, got.id);
      return;
    }
    this.deliverDirect(tab, got);
  }

  /** A whole frame read from a direct channel of `tab`: only from a node that tab runs. */
  private deliverDirect(tab: number, got: VmFrame): void {
    if (hopTracedFrame(got.frame)) hopSeen("net-in");
    if (this.hostOf[got.from] !== tab) throw new VmChannelError(`tab ${tab} sent a frame claiming node ${got.from}, which it does not run`);
    this.bridge.deliver(got.from, got.to, got.frame);
    this.directIn++;
  }

  /**
   * A message on remote node `node`'s own channel from `tab`: frames from that node only, never
   * probes. Throws as fromChannel does.
   */
  fromNodeChannel(tab: number, node: number, message: Uint8Array): void {
    const reader = this.peers.get(tab)?.nodeReaders.get(node);
    if (!reader) throw new VmChannelError(`node ${node} of tab ${tab} sent on a channel this tab does not have`);
    const got = reader.read(message);
    if (!got) return;
    if (got.kind !== "frame") throw new VmChannelError(`node ${node}'s channel from tab ${tab} carried a ${got.kind}; only its frames go there`);
    if (got.from !== node) throw new VmChannelError(`node ${node}'s channel from tab ${tab} carried a frame claiming node ${got.from}`);
    this.deliverDirect(tab, got);
  }

  /** A frame the main thread took from a `node-frame` envelope (the relay path; already checked there). */
  fromRelay(from: number, to: number, frame: Uint8Array): void {
    this.bridge.deliver(from, to, frame);
  }
}
