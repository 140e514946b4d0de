// A tab's place in a cluster: joins or creates it over a signaling transport, keeps the roster,
// opens the full mesh of links, and carries opaque frames to and from other tabs. It knows
// nothing of the VM: frames are bytes, the VM protocol version is a number it compares.
//
// Mesh rule: a newcomer opens (as WebRTC initiator) a link to every member it finds in its
// welcome; members never initiate. So every pair has exactly one link and no offer glare.
//
// Membership follows the links; signaling only introduces tabs. A member leaves when its link
// closes, goes silent, or it says goodbye (a `leave`, or a `bye` on the link), and tab 0 publishes
// each roster on every open link as well as through signaling. So when signaling is gone (the
// relay stopped, or dropped a tab's socket and closed the cluster id) the cluster runs on and only
// new joins fail ("signaling-lost"); the relay's `peer-gone` is not used. Tab 0 leaving still
// ends the cluster, as its link says. A joiner is provisional until it reports over its link to
// tab 0 that its links to every member in its welcome are open (`ready`); tab 0 evicts one that
// has not within `admitDeadlineMs`, freeing its vCPUs and saying why to everyone, itself included.

import { type ConnectorFactory, type PeerConnector } from "./connector.ts";
import { FabricError } from "./errors.ts";
import { newClusterId, newJoinToken, newPeerId } from "./ids.ts";
import { formatJoinLink, type JoinLink, parseJoinLink } from "./join-link.ts";
import { Link, type LinkCloseInfo, type LinkOptions, type SideChannel } from "./link.ts";
import { type Departure, FABRIC_VERSION, type LinkControl, MAX_REASON_CHARS, type Member, type Role, type SignalBody, type SignalData } from "./messages.ts";
import { admit, applyRoster, freeVcpus, hostRoster, removeMember, type RosterState } from "./roster.ts";
import type { SignalTransport, TransportFactory } from "./signaling.ts";

export type FabricEvent =
  | { type: "roster"; members: readonly Member[] }
  | { type: "link-up"; tab: number }
  /** A link closed or could not open; `error` is set when it failed (its code names the step). */
  | { type: "link-down"; tab: number; reason: string; error?: FabricError }
  /**
   * A member is gone from the cluster: its link closed or went silent, it said goodbye, or tab 0
   * evicted it (its links did not all come up in time). `reason` names why (for an eviction it
   * starts with "evicted by tab 0"). Frames from that member are never delivered after this event,
   * and its tab id may later be given to a new member (a `roster` event lists it then).
   */
  | { type: "member-left"; member: Member; reason: string }
  /**
   * Signaling is gone (the relay stopped, or closed the cluster id): the links and the roster keep
   * working, frames flow, members still leave when their links close; only new tabs cannot join.
   * Emitted at most once.
   */
  | { type: "signaling-lost"; error: FabricError }
  /** The cluster is over for this tab: tab 0 left (`host-left`), or tab 0 evicted this tab (`evicted`). */
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
  /**
   * How long a joiner has, from its admission, to open its links to every member and say so;
   * then tab 0 evicts it (default 30000 ms; keep it above the joiners' `connectTimeoutMs`).
   * 0 turns eviction off.
   */
  admitDeadlineMs?: number;
}

/** Default of `CreateOptions.admitDeadlineMs`. */
export const DEFAULT_ADMIT_DEADLINE_MS = 30_000;

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
  /** The member this peering is for: tab ids are reused, peer ids are not. */
  peer: string;
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
  /** Tab 0: the watch link's token (admits watchers only). */
  private watchToken: string | undefined;
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
  private signalingError: FabricError | undefined;
  /** Tab 0 only: joiners that have not yet said their links are open, with their eviction timers. */
  private readonly provisional = new Map<number, { peer: string; timer: ReturnType<typeof setTimeout> }>();
  private admitDeadlineMs = 0;
  /**
   * Not tab 0: members this tab dropped itself (their link closed, they left) as `tab:peer`, so a
   * roster of tab 0's that still lists one (tab 0 has not heard yet) does not bring it back.
   */
  private readonly locallyGone = new Set<string>();

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
    // transport.onPeerGone is deliberately not listened to: a peer's signaling socket closing says
    // nothing about its links (membership follows the links; see the top of this file).
    transport.onFatal((error) => this.signalingLost(error));
  }

  // ------------------------------------------------------------ creating and joining

  /** Creates a cluster: this tab becomes tab 0. */
  static async create(opts: CreateOptions): Promise<FabricMember> {
    const cluster = newClusterId();
    const token = newJoinToken();
    const watchToken = newJoinToken();
    const self = newPeerId();
    const roster = hostRoster({ totalVcpus: opts.totalVcpus, maxTabs: opts.maxTabs, protocol: opts.protocol }, self, opts.hostVcpus, opts.build);
    const transport = await opts.transport({ cluster, self, token, create: true, watchToken });
    const f = new FabricMember(transport, opts, cluster, token, opts.relay);
    f.watchToken = watchToken;
    f.admitDeadlineMs = opts.admitDeadlineMs ?? DEFAULT_ADMIT_DEADLINE_MS;
    f.tab = 0;
    f.roster = roster;
    f.hostPeer = self;
    return f;
  }

  /** Joins the cluster a link names. Resolves when tab 0 admitted us and every link is open. */
  static async join(link: JoinLink | string, opts: JoinOptions): Promise<FabricMember> {
    const parsed = typeof link === "string" ? parseJoinLink(link) : link;
    if (parsed.watch && opts.role !== "watcher") throw new FabricError("wrong-token", "this is a watch link: it lets this tab watch the cluster, not host vCPUs");
    const self = newPeerId();
    let transport: SignalTransport;
    try {
      transport = await opts.transport({ cluster: parsed.cluster, self, token: parsed.token, create: false });
    } catch (e) {
      throw explainRelayRefusal(e);
    }
    const f = new FabricMember(transport, opts, parsed.cluster, parsed.token, parsed.relay);
    try {
      await f.requestAdmission(opts);
      await f.connectToAll(opts.connectTimeoutMs ?? 20_000);
    } catch (e) {
      f.close(e instanceof FabricError && e.code === "evicted" ? "evicted" : "join failed");
      throw e;
    }
    // Tell tab 0, on the link (signaling may be gone), that this tab is fully meshed. (A link that
    // closed meanwhile has ended the cluster for this tab, or will: the "ended" event says so.)
    const toHost = f.peerings.get(0)?.link;
    if (toHost && !toHost.closed) toHost.sendControl({ t: "ready" });
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
        else if (e.type === "member-left" && waiting.delete(e.member.tab) && waiting.size === 0) done();
        else if (e.type === "signaling-lost")
          done(new FabricError(e.error.code, `signaling ended while the links to tab(s) ${[...waiting].join(", ")} were opening, and they cannot open without it: ${e.error.message}`));
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

  /**
   * Where else a tab may be heard (the runtime's VM channels, owned by workers): ms since `tab` was
   * last heard there, or Infinity. A link is closed as silent only when the tab is silent on both.
   */
  setAlsoHeard(source: ((tab: number) => number) | null): void {
    this.alsoHeard = source;
  }
  private alsoHeard: ((tab: number) => number) | null = null;

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

  /** Set once signaling is gone ("signaling-lost"): the cluster runs on, nobody new can join. */
  get signalingLostError(): FabricError | undefined {
    return this.signalingError;
  }

  joinLink(pageUrl: string): string {
    return formatJoinLink(pageUrl, { cluster: this.cluster, token: this.token, ...(this.relay ? { relay: this.relay } : {}) });
  }

  /** Tab 0: the link that admits watchers only (null on other tabs, which do not hold it). */
  watchLink(pageUrl: string): string | null {
    if (this.watchToken === undefined) return null;
    return formatJoinLink(pageUrl, { cluster: this.cluster, token: this.watchToken, watch: true, ...(this.relay ? { relay: this.relay } : {}) });
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
  /**
   * A further data channel on the connection to `tab` (both ends open it with the same label and
   * id), to hand to a worker in this task; null when the link is not open or its transport has no
   * such channels.
   */
  openSideChannel(tab: number, label: string, id: number): SideChannel | null {
    const link = this.peerings.get(tab)?.link;
    return link && !link.closed ? link.openSideChannel(label, id) : null;
  }

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
  /**
   * Fault injection (the failure tests and the bench): cuts the link to `tab` as a network failure
   * would, with no goodbye; both ends then see it close. Nothing a tab could not do to its own links.
   */
  cutLink(tab: number): void {
    const p = this.peerings.get(tab);
    if (!p) throw new FabricError("channel", `no link to tab ${tab} to cut`);
    p.connector.destroy();
  }

  close(reason = "leaving"): void {
    if (this.tab >= 0 && !this.ended) this.transport.send("*", { t: "leave", tab: this.tab, reason });
    // Ended before the links close: each closing under us is our leaving, not its peer's, and must
    // not be reported as that peer gone (a closing tab once told the rest that tab 0 had left).
    if (!this.ended) this.ended = new FabricError("closed", `this tab left the cluster: ${reason}`);
    this.clearProvisional();
    for (const p of this.peerings.values()) this.dropPeering(p, reason);
    this.peerings.clear();
    this.transport.close();
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
        return void this.memberGone(m.tab, `it left: ${body.reason}`, m.peer);
      }
    }
  }

  private onJoin(from: string, body: Extract<SignalBody, { t: "join" }>): void {
    const result = admit(this.roster, { ...body, peer: from }, { join: this.token, ...(this.watchToken ? { watch: this.watchToken } : {}) });
    if (!result.ok) {
      this.transport.send(from, { t: "reject", code: result.code, detail: result.detail });
      return;
    }
    const changed = result.state !== this.roster;
    this.roster = result.state;
    // The roster goes out before the welcome, so members usually know the newcomer before its offers.
    if (changed) {
      this.publishRoster();
      this.watchAdmission(result.member);
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
    this.roster = { shape: body.shape, epoch: body.epoch, members: [...body.members].sort((a, b) => a.tab - b.tab), nextTab: 1 };
    const adm = this.admission!;
    this.admission = undefined;
    this.emit({ type: "roster", members: this.roster.members });
    adm.resolve();
  }

  /** Tab 0's roster, through signaling or on the link from tab 0 (whichever comes first; epochs order them). */
  private onRoster(body: Extract<SignalBody, { t: "roster" }>): void {
    if (!this.roster) return; // not admitted yet: the welcome carries the roster
    const step = applyRoster(this.roster, body);
    if (step.state === this.roster) return;
    const { removed } = step;
    for (const k of this.locallyGone) if (!body.members.some((m) => memberKey(m) === k)) this.locallyGone.delete(k);
    const state = { ...step.state, members: step.state.members.filter((m) => !this.locallyGone.has(memberKey(m))) };
    const added = step.added.filter((m) => !this.locallyGone.has(memberKey(m)));
    const why = (m: Member) => body.gone?.find((g) => g.tab === m.tab && g.peer === m.peer)?.reason;
    if (!state.members.some((m) => m.tab === this.tab && m.peer === this.self)) {
      const me = this.me;
      const reason = (me && why(me)) ?? "tab 0's roster no longer lists it";
      return this.end(new FabricError("evicted", `tab 0 removed this tab (tab ${this.tab}) from the cluster: ${reason}`));
    }
    this.roster = state;
    for (const m of removed) this.afterMemberGone(m, why(m) ?? "tab 0 removed it from the roster");
    this.emit({ type: "roster", members: this.roster.members });
    for (const m of added) this.flushPending(m.peer);
  }

  /** A control message on the link from `tab` (validated by link-codec.ts / messages.ts). */
  private onLinkControl(p: Peering, msg: LinkControl): void {
    if (this.ended || this.peerings.get(p.tab) !== p) return;
    switch (msg.t) {
      case "roster":
        if (p.tab !== 0 || this.tab === 0) return this.invalid(`a roster on the link from tab ${p.tab}, which is not tab 0`);
        return this.onRoster(msg);
      case "ready": {
        if (this.tab !== 0) return this.invalid(`a ready message on the link from tab ${p.tab}; only tab 0 takes them`);
        const w = this.provisional.get(p.tab);
        if (w && w.peer === p.peer) {
          clearTimeout(w.timer);
          this.provisional.delete(p.tab);
        }
        return;
      }
      case "link-lost":
        if (this.tab !== 0) return this.invalid(`a link-lost message on the link from tab ${p.tab}; only tab 0 takes them`);
        if (msg.tab === 0 || msg.tab === p.tab) return this.invalid(`tab ${p.tab} says its link to tab ${msg.tab} closed, which cannot be`);
        // The mesh is broken: one of the two must go, and tab 0 removes the one reported (a
        // second report, from the other side, then names a member already gone and changes nothing).
        return void this.memberGone(msg.tab, `its link to tab ${p.tab} closed (${msg.reason})`, msg.peer);
    }
  }

  /** Tab 0: publishes the roster through signaling (joiners still connecting) and on every open link. */
  private publishRoster(gone: Departure[] = []): void {
    const body: Extract<SignalBody, { t: "roster" }> = { t: "roster", epoch: this.roster.epoch, members: [...this.roster.members], ...(gone.length > 0 ? { gone } : {}) };
    this.transport.send("*", body);
    for (const p of this.peerings.values()) if (p.link && !p.link.closed) p.link.sendControl(body);
  }

  /** Tab 0: a new member has `admitDeadlineMs` to report its links open, or it is evicted. */
  private watchAdmission(m: Member): void {
    if (this.admitDeadlineMs <= 0) return;
    const ms = this.admitDeadlineMs;
    const timer = setTimeout(() => {
      if (this.provisional.get(m.tab)?.timer !== timer) return;
      this.provisional.delete(m.tab);
      const now = this.roster.members.find((x) => x.tab === m.tab);
      if (!now || now.peer !== m.peer || this.ended) return;
      const own = this.peerings.get(m.tab)?.link;
      const detail = own && !own.closed ? "its link to tab 0 is open, but it never said its links to the other members are" : "its link to tab 0 never opened";
      this.memberGone(m.tab, `evicted by tab 0: its links did not all come up within ${ms} ms of its admission (${detail})`, m.peer);
    }, ms);
    this.provisional.set(m.tab, { peer: m.peer, timer });
  }

  private clearProvisional(tab?: number): void {
    for (const [t, w] of this.provisional) {
      if (tab !== undefined && t !== tab) continue;
      clearTimeout(w.timer);
      this.provisional.delete(t);
    }
  }

  /**
   * Signaling is gone. The cluster runs on (membership follows the links); a join in progress
   * fails, since offers and answers can no longer pass.
   */
  private signalingLost(cause: FabricError): void {
    if (this.ended || this.signalingError) return;
    const code = this.transport.kind === "relay" ? "relay" : "signaling";
    const error = new FabricError(code, `signaling ended (${cause.message}); the links stay up and the cluster runs on, but no new tab can join it`);
    this.signalingError = error;
    this.admission?.reject(new FabricError(code, `signaling ended before tab 0 answered the join: ${cause.message}`));
    this.admission = undefined;
    this.emit({ type: "signaling-lost", error });
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
    let p = this.peerings.get(m.tab);
    if (p && p.peer !== m.peer) {
      // A peering left over from the tab id's previous holder (its removal did not drop it).
      this.peerings.delete(m.tab);
      this.dropPeering(p, "member left");
      p = undefined;
    }
    (p ?? this.peering(m.tab, false)).connector.signal(body.data);
  }

  private flushPending(peer: string): void {
    const list = this.pending.get(peer);
    if (!list) return;
    this.pending.delete(peer);
    for (const { from, body } of list) this.onSignal(from, body);
  }

  // ------------------------------------------------------------ links

  private peering(tab: number, initiator: boolean): Peering {
    const peer = this.roster.members.find((x) => x.tab === tab)?.peer;
    if (peer === undefined) throw new Error(`internal: no member with tab ${tab} to link to`);
    const connector = this.opts.connector({ initiator, remoteTab: tab });
    const p: Peering = { tab, peer, connector };
    this.peerings.set(tab, p);
    connector.onSignal((data: SignalData) => {
      if (this.peerings.get(tab) === p) this.transport.send(peer, { t: "signal", tab: this.tab, data });
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
      link.onControl((msg) => this.onLinkControl(p, msg));
      link.onClose((info) => this.onLinkClosed(p, info));
      const every = this.opts.pingIntervalMs ?? 1000;
      const silence = this.opts.silenceTimeoutMs ?? 5000;
      if (every > 0)
        p.pingTimer = setInterval(() => {
          if (silence > 0 && link.checkSilence(silence, `tab ${tab}`, this.alsoHeard?.(tab))) return;
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
    const wasMember = this.memberGone(p.tab, `its link closed (${reason})`, p.peer);
    // And tell tab 0, which may still have its own link to that tab: the mesh needs every pair.
    const toHost = this.peerings.get(0)?.link;
    if (wasMember && this.tab !== 0 && p.tab !== 0 && toHost && !toHost.closed)
      toHost.sendControl({ t: "link-lost", tab: p.tab, peer: p.peer, reason: reason.slice(0, MAX_REASON_CHARS) });
  }

  private dropPeering(p: Peering, reason: string): void {
    if (p.pingTimer) clearInterval(p.pingTimer);
    p.link?.close(reason);
    p.connector.destroy();
  }

  // ------------------------------------------------------------ members leaving

  /** A member is gone (its link closed, it left, or tab 0 evicts it); `peer` guards against a reused tab id. */
  private memberGone(tab: number, reason: string, peer?: string): boolean {
    if (!this.roster || tab === this.tab || this.ended) return false;
    const m = this.roster.members.find((x) => x.tab === tab);
    if (!m || (peer !== undefined && m.peer !== peer)) return false;
    const { state, removed } = removeMember(this.roster, tab, this.tab === 0);
    if (!removed) return false;
    this.roster = state;
    reason = reason.slice(0, MAX_REASON_CHARS);
    if (this.tab !== 0) this.locallyGone.add(memberKey(removed));
    if (this.tab === 0) {
      this.clearProvisional(tab);
      // On every open link, the gone member's own included: an evicted tab learns why.
      this.publishRoster([{ tab, peer: removed.peer, reason }]);
    }
    this.afterMemberGone(removed, reason);
    this.emit({ type: "roster", members: this.roster.members });
    return true;
  }

  private afterMemberGone(m: Member, reason: string): void {
    const p = this.peerings.get(m.tab);
    if (p && p.peer === m.peer) {
      this.peerings.delete(m.tab);
      this.dropPeering(p, reason.startsWith("evicted") ? "evicted" : "member left");
    }
    this.emit({ type: "member-left", member: m, reason });
    if (m.tab === 0) this.end(new FabricError("host-left", `tab 0 left, the cluster is over (${reason})`));
  }

  private end(error: FabricError): void {
    if (this.ended) return;
    this.ended = error;
    this.admission?.reject(error);
    this.admission = undefined;
    this.clearProvisional();
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

const memberKey = (m: Member) => `${m.tab}:${m.peer}`;

/** A join the relay refused or could not carry (only the relay fails with these codes): say what it means for a running cluster. */
function explainRelayRefusal(e: unknown): unknown {
  if (!(e instanceof FabricError)) return e;
  if (e.code === "unknown-cluster")
    return new FabricError(e.code, `${e.message} — the relay no longer introduces tabs to this cluster: its tab 0 closed, or tab 0 lost its connection to the relay (a running cluster keeps its links, but no new tab can join it)`);
  if (e.code === "relay") return new FabricError(e.code, `${e.message} — no new tab can join through it (a running cluster keeps its links without the relay)`);
  return e;
}
