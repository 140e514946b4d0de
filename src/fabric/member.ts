// A tab's place in a cluster: joins or creates it over a signaling transport, keeps the roster,
// opens the full mesh of links, and carries opaque frames to and from other tabs. It knows
// nothing of the VM: frames are bytes, the VM protocol version is a number it compares.
//
// Mesh rule: a newcomer opens (as WebRTC initiator) a link to every member it finds in its
// welcome; members never initiate. So every pair has exactly one link and no offer glare.

import { type ConnectorFactory, type PeerConnector } from "./connector.ts";
import { FabricError } from "./errors.ts";
import { newClusterId, newJoinToken, newPeerId } from "./ids.ts";
import { formatJoinLink, type JoinLink, parseJoinLink } from "./join-link.ts";
import { Link, type LinkCloseInfo, type LinkOptions } from "./link.ts";
import { FABRIC_VERSION, type Member, type Role, type SignalBody, type SignalData } from "./messages.ts";
import { admit, applyRoster, freeVcpus, hostRoster, removeMember, type RosterState } from "./roster.ts";
import type { SignalTransport, TransportFactory } from "./signaling.ts";

export type FabricEvent =
  | { type: "roster"; members: readonly Member[] }
  | { type: "link-up"; tab: number }
  /** A link closed or could not open; `error` is set when it failed (its code names the step). */
  | { type: "link-down"; tab: number; reason: string; error?: FabricError }
  /** A member is gone from the cluster (closed, dropped or said goodbye). */
  | { type: "member-left"; member: Member; reason: string }
  /** Signaling is gone (relay closed): existing links keep working, nobody new can join. */
  | { type: "signaling-lost"; error: FabricError }
  /** The cluster is over for this tab (tab 0 left). */
  | { type: "ended"; error: FabricError }
  /** A message failed validation and was dropped. */
  | { type: "invalid"; error: FabricError };

export interface CommonOptions {
  transport: TransportFactory;
  connector: ConnectorFactory;
  /** The VM protocol version this tab speaks; every tab of a cluster must speak the same. */
  protocol: number;
  /** Shown to others (and in version-mismatch errors). */
  build: string;
  /** How long a joiner waits for tab 0's answer before concluding the cluster does not exist. */
  joinTimeoutMs?: number;
  /** How long a joiner waits for its links to every member to open. */
  connectTimeoutMs?: number;
  /** Automatic ping period per link for the RTT display and liveness; 0 turns both off. */
  pingIntervalMs?: number;
  /** A link from which nothing came for this long is closed as dead (default 5000 ms). */
  silenceTimeoutMs?: number;
  link?: LinkOptions;
}

export interface CreateOptions extends CommonOptions {
  totalVcpus: number;
  maxTabs: number;
  /** vCPUs tab 0 hosts itself (at least the boot CPU). */
  hostVcpus: number;
  /** Relay URL written into join links (tabs on other machines); omit for this browser only. */
  relay?: string;
}

export interface JoinOptions extends CommonOptions {
  role: "compute" | "watcher";
  /** vCPUs asked for (ignored for watchers). */
  vcpus: number;
}

export interface LinkInfo {
  tab: number;
  state: "connecting" | "up";
  rttLastMs?: number;
  rttP50Ms?: number;
  rttP99Ms?: number;
  queuedBytes: number;
  framesSent: number;
  framesReceived: number;
}

interface Peering {
  tab: number;
  connector: PeerConnector;
  link?: Link;
  pingTimer?: ReturnType<typeof setInterval>;
}

const MAX_PENDING_PER_PEER = 64;
const MAX_PENDING_PEERS = 32;

/** Bounds of the frames kept for the first listener (see `onFrame`). */
export const EARLY_FRAMES_MAX = 1024;
export const EARLY_BYTES_MAX = 8 << 20;

export class FabricMember {
  readonly cluster: string;
  readonly token: string;
  readonly relay: string | undefined;
  readonly self: string;
  /** This tab's number in the cluster (0: the tab that created it); -1 until admitted. */
  tab = -1;
  private roster!: RosterState;
  private hostPeer: string | undefined;
  private readonly peerings = new Map<number, Peering>();
  /** Signals from peers the roster does not list yet (their offer overtook tab 0's roster). */
  private readonly pending = new Map<string, { from: string; body: Extract<SignalBody, { t: "signal" }> }[]>();
  private readonly listeners: ((e: FabricEvent) => void)[] = [];
  private readonly frameListeners: ((from: number, frame: Uint8Array) => void)[] = [];
  /**
   * Frames that came before anyone listened: a link can open (and a peer send) before this tab's
   * page attached its handler. Kept in order, bounded, and handed to the first listener; null once
   * one listens.
   */
  private early: { from: number; frame: Uint8Array }[] | null = [];
  private earlyBytes = 0;
  private delayMs = 0;
  private ended: FabricError | undefined;

  private constructor(
    private readonly transport: SignalTransport,
    private readonly opts: CommonOptions,
    cluster: string,
    token: string,
    relay: string | undefined,
  ) {
    this.cluster = cluster;
    this.token = token;
    this.relay = relay;
    this.self = transport.self;
    transport.onMessage((from, body) => this.onSignalMessage(from, body));
    transport.onInvalid((error) => this.emit({ type: "invalid", error }));
    transport.onPeerGone((peer) => {
      const m = this.roster?.members.find((x) => x.peer === peer);
      if (m) this.memberGone(m.tab, "its signaling connection closed");
    });
    transport.onFatal((error) => {
      if (error.code === "host-left") this.end(error);
      else this.emit({ type: "signaling-lost", error });
    });
  }

  // ------------------------------------------------------------ creating and joining

  /** Creates a cluster: this tab becomes tab 0. */
  static async create(opts: CreateOptions): Promise<FabricMember> {
    const cluster = newClusterId();
    const token = newJoinToken();
    const self = newPeerId();
    const roster = hostRoster({ totalVcpus: opts.totalVcpus, maxTabs: opts.maxTabs, protocol: opts.protocol }, self, opts.hostVcpus, opts.build);
    const transport = await opts.transport({ cluster, self, token, create: true });
    const f = new FabricMember(transport, opts, cluster, token, opts.relay);
    f.tab = 0;
    f.roster = roster;
    f.hostPeer = self;
    return f;
  }

  /** Joins the cluster a link names. Resolves when tab 0 admitted us and every link is open. */
  static async join(link: JoinLink | string, opts: JoinOptions): Promise<FabricMember> {
    const parsed = typeof link === "string" ? parseJoinLink(link) : link;
    const self = newPeerId();
    const transport = await opts.transport({ cluster: parsed.cluster, self, token: parsed.token, create: false });
    const f = new FabricMember(transport, opts, parsed.cluster, parsed.token, parsed.relay);
    try {
      await f.requestAdmission(opts);
      await f.connectToAll(opts.connectTimeoutMs ?? 20_000);
    } catch (e) {
      f.close("join failed");
      throw e;
    }
    return f;
  }

  private admission: { resolve: () => void; reject: (e: FabricError) => void } | undefined;

  private requestAdmission(opts: JoinOptions): Promise<void> {
    const timeoutMs = opts.joinTimeoutMs ?? 4000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.admission = undefined;
        const where = this.transport.kind === "broadcast" ? "in this browser" : "through the relay";
        reject(
          new FabricError(
            "unknown-cluster",
            `no tab 0 answered for cluster ${this.cluster} ${where} within ${timeoutMs} ms: its first tab is closed` +
              (this.transport.kind === "broadcast" ? ", or it runs on another machine (the link then needs a relay=...)" : ""),
          ),
        );
      }, timeoutMs);
      this.admission = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.transport.send("*", { t: "join", token: this.token, role: opts.role, vcpus: opts.role === "watcher" ? 0 : opts.vcpus, fabric: FABRIC_VERSION, protocol: opts.protocol, build: opts.build });
    });
  }

  private connectToAll(timeoutMs: number): Promise<void> {
    const others = this.roster.members.filter((m) => m.tab !== this.tab);
    for (const m of others) this.peering(m.tab, true);
    return new Promise<void>((resolve, reject) => {
      const waiting = new Set(others.map((m) => m.tab));
      if (waiting.size === 0) return resolve();
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const off = this.on((e) => {
        if (e.type === "link-up" && waiting.delete(e.tab) && waiting.size === 0) done();
        else if (e.type === "link-down" && waiting.has(e.tab)) done(e.error ?? new FabricError("channel", `the link to tab ${e.tab} closed while opening: ${e.reason}`));
        else if (e.type === "ended") done(e.error);
      });
      const done = (err?: FabricError) => {
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve();
      };
      timer = setTimeout(() => done(new FabricError("ice", `links to tab(s) ${[...waiting].join(", ")} did not open within ${timeoutMs} ms`)), timeoutMs);
    });
  }

  // ------------------------------------------------------------ public API

  get role(): Role {
    return this.me?.role ?? "watcher";
  }

  get me(): Member | undefined {
    return this.roster?.members.find((m) => m.tab === this.tab);
  }

  get members(): readonly Member[] {
    return this.roster.members;
  }

  get shape() {
    return this.roster.shape;
  }

  /** vCPUs no member hosts yet; empty when the slices cover the machine and tab 0 may boot. */
  get freeVcpus(): number[] {
    return freeVcpus(this.roster);
  }

  get isEnded(): FabricError | undefined {
    return this.ended;
  }

  joinLink(pageUrl: string): string {
    return formatJoinLink(pageUrl, { cluster: this.cluster, token: this.token, ...(this.relay ? { relay: this.relay } : {}) });
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(cb: (e: FabricEvent) => void): () => void {
    this.listeners.push(cb);
    return () => {
      const i = this.listeners.indexOf(cb);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Frames from every link, in order per sender; the first listener also gets the frames that came before it. */
  onFrame(cb: (from: number, frame: Uint8Array) => void): void {
    this.frameListeners.push(cb);
    const early = this.early;
    if (!early) return;
    this.early = null;
    this.earlyBytes = 0;
    for (const { from, frame } of early) cb(from, frame);
  }

  private deliverFrame(from: number, frame: Uint8Array): void {
    if (!this.early) {
      for (const cb of this.frameListeners) cb(from, frame);
      return;
    }
    if (this.early.length >= EARLY_FRAMES_MAX || this.earlyBytes + frame.length > EARLY_BYTES_MAX) {
      // Dropping silently would break the links' promise of order without loss: say so.
      this.emit({ type: "invalid", error: new FabricError("overflow", `a frame from tab ${from} was dropped: nothing listens for frames yet and ${this.early.length} frames (${this.earlyBytes} bytes) wait already`) });
      return;
    }
    this.early.push({ from, frame });
    this.earlyBytes += frame.length;
  }

  /** Sends one frame to one tab; frames to a tab arrive in the order sent. */
  send(tab: number, frame: Uint8Array): void {
    const link = this.peerings.get(tab)?.link;
    if (!link || link.closed) throw new FabricError("channel", `no open link to tab ${tab}`);
    link.send(frame);
  }

  /** Sends one frame to every tab with an open link. */
  broadcast(frame: Uint8Array): void {
    for (const p of this.peerings.values()) if (p.link && !p.link.closed) p.link.send(frame);
  }

  ping(tab: number): Promise<number> {
    const link = this.peerings.get(tab)?.link;
    if (!link) return Promise.reject(new FabricError("channel", `no open link to tab ${tab}`));
    return link.ping();
  }

  /** Added one-way delay on everything this tab sends (0..50 ms), for the live view's knob. */
  setDelay(ms: number): void {
    for (const p of this.peerings.values()) p.link?.setDelay(ms);
    this.delayMs = ms;
  }

  get addedDelayMs(): number {
    return this.delayMs;
  }

  links(): LinkInfo[] {
    return [...this.peerings.values()]
      .sort((a, b) => a.tab - b.tab)
      .map((p) => {
        const l = p.link;
        const info: LinkInfo = { tab: p.tab, state: l ? "up" : "connecting", queuedBytes: l?.queuedBytes ?? 0, framesSent: l?.framesSent ?? 0, framesReceived: l?.framesReceived ?? 0 };
        if (l?.rtt.last !== undefined) info.rttLastMs = l.rtt.last;
        const p50 = l?.rtt.percentile(50);
        const p99 = l?.rtt.percentile(99);
        if (p50 !== undefined) info.rttP50Ms = p50;
        if (p99 !== undefined) info.rttP99Ms = p99;
        return info;
      });
  }

  /** Leaves the cluster: tells the others (signaling and links) and releases everything. */
  close(reason = "leaving"): void {
    if (this.tab >= 0 && !this.ended) this.transport.send("*", { t: "leave", tab: this.tab, reason });
    for (const p of this.peerings.values()) this.dropPeering(p, reason);
    this.peerings.clear();
    this.transport.close();
    if (!this.ended) this.ended = new FabricError("closed", `this tab left the cluster: ${reason}`);
  }

  // ------------------------------------------------------------ signaling messages

  private onSignalMessage(from: string, body: SignalBody): void {
    if (this.ended) return;
    const isHost = this.tab === 0;
    switch (body.t) {
      case "join":
        if (isHost) this.onJoin(from, body);
        return;
      case "welcome":
      case "reject":
        if (!this.admission) return; // not waiting (anymore): a late or stray answer
        if (body.t === "reject") return this.admission.reject(new FabricError(body.code, `tab 0 refused to admit this tab: ${body.detail}`));
        return this.onWelcome(from, body);
      case "roster":
        if (from !== this.hostPeer || isHost) return this.invalid(`a roster from ${from}, who is not tab 0`);
        return this.onRoster(body);
      case "signal":
        return this.onSignal(from, body);
      case "leave": {
        const m = this.roster?.members.find((x) => x.peer === from);
        if (!m || m.tab !== body.tab) return;
        return this.memberGone(m.tab, `it left: ${body.reason}`);
      }
    }
  }

  private onJoin(from: string, body: Extract<SignalBody, { t: "join" }>): void {
    const result = admit(this.roster, { ...body, peer: from }, this.token);
    if (!result.ok) {
      this.transport.send(from, { t: "reject", code: result.code, detail: result.detail });
      return;
    }
    const changed = result.state !== this.roster;
    this.roster = result.state;
    // The roster goes out before the welcome, so members usually know the newcomer before its offers.
    if (changed) {
      this.transport.send("*", { t: "roster", epoch: this.roster.epoch, members: [...this.roster.members] });
      this.emit({ type: "roster", members: this.roster.members });
    }
    this.transport.send(from, { t: "welcome", tab: result.member.tab, shape: this.roster.shape, epoch: this.roster.epoch, members: [...this.roster.members] });
    this.flushPending(from);
  }

  private onWelcome(from: string, body: Extract<SignalBody, { t: "welcome" }>): void {
    const host = body.members.find((m) => m.tab === 0);
    const me = body.members.find((m) => m.tab === body.tab);
    if (!host || host.peer !== from || !me || me.peer !== this.self)
      return this.invalid(`a welcome from ${from} that does not list its sender as tab 0 and this tab as tab ${body.tab}`);
    if (this.transport.creator !== undefined && from !== this.transport.creator)
      return this.invalid(`a welcome from ${from}, but the relay says tab 0 is ${this.transport.creator}`);
    if (body.shape.protocol !== this.opts.protocol)
      return this.admission?.reject(new FabricError("version-mismatch", `tab 0 runs VM protocol v${body.shape.protocol}, this tab v${this.opts.protocol}`));
    this.hostPeer = from;
    this.tab = body.tab;
    this.roster = { shape: body.shape, epoch: body.epoch, members: [...body.members].sort((a, b) => a.tab - b.tab), nextTab: Math.max(...body.members.map((m) => m.tab + 1)) };
    const adm = this.admission!;
    this.admission = undefined;
    this.emit({ type: "roster", members: this.roster.members });
    adm.resolve();
  }

  private onRoster(body: Extract<SignalBody, { t: "roster" }>): void {
    if (!this.roster) return; // not admitted yet: the welcome carries the roster
    const { state, added, removed } = applyRoster(this.roster, body);
    if (state === this.roster) return;
    this.roster = state;
    for (const m of removed) this.afterMemberGone(m, "tab 0 removed it from the roster");
    this.emit({ type: "roster", members: this.roster.members });
    for (const m of added) this.flushPending(m.peer);
  }

  private onSignal(from: string, body: Extract<SignalBody, { t: "signal" }>): void {
    const m = this.roster?.members.find((x) => x.peer === from);
    if (!m) {
      // Its offer overtook tab 0's roster; keep it (bounded) until the roster names the sender.
      if (!this.pending.has(from) && this.pending.size >= MAX_PENDING_PEERS) return;
      const list = this.pending.get(from) ?? [];
      if (list.length < MAX_PENDING_PER_PEER) list.push({ from, body });
      this.pending.set(from, list);
      return;
    }
    if (m.tab !== body.tab || m.tab === this.tab) return this.invalid(`a signal from ${from} claims tab ${body.tab}, the roster says ${m.tab}`);
    const p = this.peerings.get(m.tab) ?? this.peering(m.tab, false);
    p.connector.signal(body.data);
  }

  private flushPending(peer: string): void {
    const list = this.pending.get(peer);
    if (!list) return;
    this.pending.delete(peer);
    for (const { from, body } of list) this.onSignal(from, body);
  }

  // ------------------------------------------------------------ links

  private peering(tab: number, initiator: boolean): Peering {
    const connector = this.opts.connector({ initiator, remoteTab: tab });
    const p: Peering = { tab, connector };
    this.peerings.set(tab, p);
    connector.onSignal((data: SignalData) => {
      const m = this.roster.members.find((x) => x.tab === tab);
      if (m) this.transport.send(m.peer, { t: "signal", tab: this.tab, data });
    });
    connector.onError((error) => {
      if (this.peerings.get(tab) !== p) return;
      this.peerings.delete(tab);
      connector.destroy();
      this.emit({ type: "link-down", tab, reason: error.message, error });
    });
    connector.onConnect((raw) => {
      if (this.peerings.get(tab) !== p) return;
      const link = new Link(raw, this.opts.link);
      p.link = link;
      if (this.delayMs > 0) link.setDelay(this.delayMs);
      link.onFrame((frame) => this.deliverFrame(tab, frame));
      link.onClose((info) => this.onLinkClosed(p, info));
      const every = this.opts.pingIntervalMs ?? 1000;
      const silence = this.opts.silenceTimeoutMs ?? 5000;
      if (every > 0)
        p.pingTimer = setInterval(() => {
          if (silence > 0 && link.checkSilence(silence, `tab ${tab}`)) return;
          void link.ping().catch(() => {});
        }, every);
      this.emit({ type: "link-up", tab });
    });
    return p;
  }

  private onLinkClosed(p: Peering, info: LinkCloseInfo): void {
    if (this.peerings.get(p.tab) !== p) return;
    this.peerings.delete(p.tab);
    this.dropPeering(p, "closed");
    const reason = info.error?.message ?? info.byeReason ?? "closed";
    this.emit({ type: "link-down", tab: p.tab, reason, ...(info.error ? { error: info.error } : {}) });
    // A closed link means a closed (or crashed) tab: say so at once rather than wait for tab 0.
    this.memberGone(p.tab, `its link closed (${reason})`);
  }

  private dropPeering(p: Peering, reason: string): void {
    if (p.pingTimer) clearInterval(p.pingTimer);
    p.link?.close(reason);
    p.connector.destroy();
  }

  // ------------------------------------------------------------ members leaving

  private memberGone(tab: number, reason: string): void {
    if (!this.roster || tab === this.tab) return;
    const { state, removed } = removeMember(this.roster, tab, this.tab === 0);
    if (!removed) return;
    this.roster = state;
    if (this.tab === 0) this.transport.send("*", { t: "roster", epoch: state.epoch, members: [...state.members] });
    this.afterMemberGone(removed, reason);
    this.emit({ type: "roster", members: this.roster.members });
  }

  private afterMemberGone(m: Member, reason: string): void {
    const p = this.peerings.get(m.tab);
    if (p) {
      this.peerings.delete(m.tab);
      this.dropPeering(p, "member left");
    }
    this.emit({ type: "member-left", member: m, reason });
    if (m.tab === 0) this.end(new FabricError("host-left", `tab 0 left, the cluster is over (${reason})`));
  }

  private end(error: FabricError): void {
    if (this.ended) return;
    this.ended = error;
    for (const p of this.peerings.values()) this.dropPeering(p, "cluster ended");
    this.peerings.clear();
    this.transport.close();
    this.emit({ type: "ended", error });
  }

  private invalid(why: string): void {
    this.emit({ type: "invalid", error: new FabricError("bad-message", why) });
  }

  private emit(e: FabricEvent): void {
    for (const cb of [...this.listeners]) cb(e);
  }
}
