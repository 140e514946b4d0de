// One node's half of the DSM coherence protocol: Ivy-style, 4 KiB pages, Invalid/Shared/Modified.
//
// Manager scheme: a FIXED DISTRIBUTED MANAGER (page p is managed by node p mod N) that serialises
// the transactions of each page, with a confirmation that ends each transaction. Chosen over Ivy's
// dynamic probable-owner chain (which GiantVM uses) because:
//   - at most one transaction per page is in flight, so the invariants are local and the proof of
//     deadlock freedom is short (see README.md): no request ever queues at a node that is itself
//     waiting for another node;
//   - a fault costs at most three one-way hops before the data arrives (requester -> manager ->
//     owner -> requester), two when the manager is the requester or the owner (always so with two
//     nodes); a probable-owner chain is as cheap when its hint is right but grows under contention;
//   - the confirmation doubles as the anti-livelock hold: the manager does not move the page away
//     before the requester's engine has used it (see `accessDone`).
// Deadlock freedom (README.md has the full argument): a node never waits on another node while
// handling a message. Invalidations, forwards and revokes wait at most for the local engine's
// accessDone of a held grant, and the engine never waits for a page while holding a grant of that
// page or a higher-numbered one, so every chain of waits climbs in page number and ends.
// GiantVM's trick is kept as the option `readTakesOwnership` (default on): a read fault moves
// ownership to the reader (the old owner keeps a shared copy), so the write that usually follows a
// read costs only the invalidation of the other copies, with no trip to the manager.
//
// Sequential consistency: a node writes only while it holds the page Modified; it gets Modified only
// after every other copy has been revoked by its engine (invalidation acks) and the previous owner's
// access was revoked; copies are only handed out by the owner, so there is one writer or many
// readers at any time, and every copy carries the bytes of the latest write (version check).
//
// Pure: no timers, no I/O, no globals. Inputs are method calls, outputs are DsmEffect lists.

import type {
  DsmConfirm,
  DsmForward,
  DsmGrant,
  DsmInvalidate,
  DsmInvalidateAck,
  DsmMessage,
  DsmRequest,
  PageData,
  PageRun,
} from "../messages.ts";
import type { Access, FaultAccess, NodeId, PageNumber, PageState, PageVersion } from "../types.ts";
import { MAX_NODES, PAGE_SIZE } from "../types.ts";
import type { DsmEffect } from "./effects.ts";
import { DsmProtocolError, DsmUsageError } from "./effects.ts";

export interface DsmConfig {
  /** This node's id, 0..nodes-1. Node 0 starts owning every page, Modified, at version 1. */
  self: NodeId;
  nodes: number;
  /** Guest RAM in pages; page numbers are 0..pages-1. */
  pages: number;
  /** A read fault also moves ownership to the reader (default true). */
  readTakesOwnership?: boolean;
}

/** Counters the DSM owns (names match STAT_COUNTERS in messages.ts). */
export interface DsmCounters {
  readFaults: number;
  writeFaults: number;
  upgrades: number;
  requestsSent: number;
  forwardsServed: number;
  pagesSentBytes: number;
  pagesSentZero: number;
  pagesSentCurrent: number;
  invalidationsSent: number;
  invalidationsReceived: number;
}

export function zeroDsmCounters(): DsmCounters {
  return {
    readFaults: 0,
    writeFaults: 0,
    upgrades: 0,
    requestsSent: 0,
    forwardsServed: 0,
    pagesSentBytes: 0,
    pagesSentZero: 0,
    pagesSentCurrent: 0,
    invalidationsSent: 0,
    invalidationsReceived: 0,
  };
}

/** A read-only view of one page at this node, for tests and the live view. */
export interface PageInspection {
  access: Access;
  owner: boolean;
  version: PageVersion;
  copyset: NodeId[];
  state: PageState;
  busy: Busy["kind"] | null;
  deferred: number;
  revokesPending: number;
  /** Only at the page's manager: who it believes owns the page, and transactions queued. */
  manager: { owner: NodeId; queued: number } | null;
}

const NONE = 0;
const READ = 1;
const WRITE = 2;
const ACCESS_NAMES: readonly Access[] = ["none", "read", "write"];
const accessLevel = (a: FaultAccess): number => (a === "write" ? WRITE : READ);

/** What a page at this node is waiting for; while set, forwarded requests and local faults queue. */
type Busy =
  /** Asked the manager; waiting for the grant and for `grant.acks` invalidation acks. */
  | { kind: "requesting"; access: FaultAccess; grant: DsmGrant | null; acks: number }
  /** Owner going Shared -> Modified: waiting for the acks of its copyset's invalidations. */
  | { kind: "upgrading"; version: PageVersion; acksMissing: number }
  /** Granted; waiting for the engine's accessDone. `confirm` is owed to the manager. */
  | { kind: "holding"; confirm: FaultAccess | null }
  /** Owner serving a forwarded request; waiting for the engine's revoke. */
  | { kind: "serving"; fwd: DsmForward };

type Deferred =
  | { kind: "fault"; access: FaultAccess }
  | { kind: "forward"; fwd: DsmForward }
  | { kind: "invalidate"; inv: DsmInvalidate };
type RevokePurpose = { kind: "invalidate"; inv: DsmInvalidate } | { kind: "serve"; fwd: DsmForward };
interface QueuedRequest {
  requester: NodeId;
  access: FaultAccess;
  have: PageVersion;
}

export class DsmNode {
  readonly self: NodeId;
  readonly nodes: number;
  readonly pages: number;
  readonly readTakesOwnership: boolean;
  readonly counters: DsmCounters = zeroDsmCounters();

  // Per-page state as typed arrays: guest RAM can be tens of thousands of pages.
  private readonly access: Uint8Array; // what the engine may do once pending revokes complete
  private readonly owner: Uint8Array;
  // Version of the bytes in local memory (0: none). Safe integers, not u32: at thousands of
  // transfers a second a hot page would wrap 32 bits within weeks, and a wrapped version could
  // make a stale copy look current.
  private readonly version: Float64Array;
  private readonly copysets = new Map<PageNumber, NodeId[]>(); // at the owner; never contains self
  private readonly managedOwner: Uint8Array; // manager's record of each managed page's owner
  private readonly managerQueues = new Map<PageNumber, QueuedRequest[]>(); // head = in progress
  private readonly busy = new Map<PageNumber, Busy>();
  private readonly deferred = new Map<PageNumber, Deferred[]>();
  private readonly revokes = new Map<PageNumber, RevokePurpose[]>();
  private readonly changed = new Set<PageNumber>();

  private effects: DsmEffect[] = [];
  private readonly loopback: DsmMessage[] = [];

  constructor(config: DsmConfig) {
    const { self, nodes, pages } = config;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
      throw new DsmUsageError(`nodes is ${nodes}, expected 1..${MAX_NODES}`);
    if (!Number.isInteger(self) || self < 0 || self >= nodes)
      throw new DsmUsageError(`self is ${self}, expected a node id in 0..${nodes - 1}`);
    if (!Number.isInteger(pages) || pages < 1 || pages > 0x1_0000_0000)
      throw new DsmUsageError(`pages is ${pages}, expected 1..2^32`);
    this.self = self;
    this.nodes = nodes;
    this.pages = pages;
    this.readTakesOwnership = config.readTakesOwnership ?? true;
    this.access = new Uint8Array(pages);
    this.owner = new Uint8Array(pages);
    this.version = new Float64Array(pages);
    this.managedOwner = new Uint8Array(pages); // every page starts owned by node 0
    if (self === 0) {
      this.access.fill(WRITE);
      this.owner.fill(1);
      this.version.fill(1);
    }
  }

  /** The node that serialises the transactions of `page`. */
  managerOf(page: PageNumber): NodeId {
    return page % this.nodes;
  }

  // ------------------------------------------------------------ inputs

  /** The local engine touched `page` without sufficient access. */
  onLocalFault(page: PageNumber, access: FaultAccess): DsmEffect[] {
    this.checkPage(page);
    if (access !== "read" && access !== "write") throw new DsmUsageError(`fault access is ${String(access)}`);
    return this.run(() => {
      // While a grant is held (until its accessDone), new faults on the page wait their turn.
      if (this.busy.has(page)) this.defer(page, { kind: "fault", access });
      else this.handleFault(page, access);
    });
  }

  /** The engine retried the access a grant allowed (see the grant effect). */
  accessDone(page: PageNumber): DsmEffect[] {
    this.checkPage(page);
    const busy = this.busy.get(page);
    if (busy?.kind !== "holding") throw new DsmUsageError(`accessDone(${page}) without an outstanding grant`);
    return this.run(() => {
      this.release(page, busy);
      this.drain(page);
    });
  }

  /** The engine completed the oldest revoke of `page`; `bytes` when the revoke asked for them. */
  revoked(page: PageNumber, bytes?: Uint8Array): DsmEffect[] {
    this.checkPage(page);
    const pending = this.revokes.get(page);
    const purpose = pending?.[0];
    if (pending === undefined || purpose === undefined)
      throw new DsmUsageError(`revoked(${page}) without a pending revoke`);
    const wanted = purpose.kind === "serve" && this.needsBytes(purpose.fwd);
    if (wanted && (!(bytes instanceof Uint8Array) || bytes.length !== PAGE_SIZE))
      throw new DsmUsageError(`revoked(${page}) must pass the page's ${PAGE_SIZE} bytes`);
    pending.shift();
    if (pending.length === 0) this.revokes.delete(page);
    return this.run(() => {
      if (purpose.kind === "invalidate") {
        this.send(purpose.inv.ackTo, { type: "dsm-invalidate-ack", page, version: purpose.inv.version });
      } else {
        this.finishServe(purpose.fwd, wanted ? bytes! : null);
        this.drain(page);
      }
    });
  }

  /** A DSM message from another node (links deliver each pair's messages in order). */
  onMessage(from: NodeId, msg: DsmMessage): DsmEffect[] {
    if (!Number.isInteger(from) || from < 0 || from >= this.nodes || from === this.self)
      throw new DsmProtocolError(`message from node ${from}, expected another node in 0..${this.nodes - 1}`);
    return this.run(() => this.dispatch(from, msg));
  }

  // ------------------------------------------------------------ queries

  inspect(page: PageNumber): PageInspection {
    this.checkPage(page);
    const managed = this.managerOf(page) === this.self;
    return {
      access: ACCESS_NAMES[this.access[page]!]!,
      owner: this.owner[page] === 1,
      version: this.version[page]!,
      copyset: [...(this.copysets.get(page) ?? [])],
      state: this.pageState(page),
      busy: this.busy.get(page)?.kind ?? null,
      deferred: this.deferred.get(page)?.length ?? 0,
      revokesPending: this.revokes.get(page)?.length ?? 0,
      manager: managed
        ? { owner: this.managedOwner[page]!, queued: this.managerQueues.get(page)?.length ?? 0 }
        : null,
    };
  }

  /** True when nothing is in flight at this node (no transaction, queue or revoke pending). */
  isQuiescent(): boolean {
    return this.busy.size === 0 && this.deferred.size === 0 && this.revokes.size === 0 && this.managerQueues.size === 0;
  }

  pageState(page: PageNumber): PageState {
    if (this.owner[page]) return this.access[page] === WRITE ? "modified" : "shared-owner";
    return this.access[page] === NONE ? "invalid" : "shared";
  }

  /** Pages whose state here changed since the last call, as sorted runs (for statistics snapshots). */
  takePageChanges(): PageRun[] {
    const pages = [...this.changed].sort((a, b) => a - b);
    this.changed.clear();
    const runs: PageRun[] = [];
    for (const page of pages) {
      const state = this.pageState(page);
      const last = runs[runs.length - 1];
      if (last && last.first + last.count === page && last.state === state) last.count++;
      else runs.push({ first: page, count: 1, state });
    }
    return runs;
  }

  // ------------------------------------------------------------ plumbing

  private checkPage(page: PageNumber): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.pages)
      throw new DsmUsageError(`page ${page} is outside guest RAM (0..${this.pages - 1})`);
  }

  /** Runs one input, then messages this node sent to itself, and returns the effects in order. */
  private run(body: () => void): DsmEffect[] {
    const out: DsmEffect[] = [];
    this.effects = out;
    body();
    while (this.loopback.length > 0) this.dispatch(this.self, this.loopback.shift()!);
    return out;
  }

  private send(to: NodeId, msg: DsmMessage): void {
    if (to === this.self) this.loopback.push(msg);
    else this.effects.push({ type: "send", to, msg });
  }

  private setAccess(page: PageNumber, level: number, owner: boolean): void {
    this.access[page] = level;
    this.owner[page] = owner ? 1 : 0;
    this.changed.add(page);
  }

  private revoke(page: PageNumber, access: "none" | "read", wantBytes: boolean, purpose: RevokePurpose): void {
    const list = this.revokes.get(page);
    if (list) list.push(purpose);
    else this.revokes.set(page, [purpose]);
    this.effects.push({ type: "revoke", page, access, wantBytes });
  }

  private defer(page: PageNumber, item: Deferred): void {
    const list = this.deferred.get(page);
    if (list) list.push(item);
    else this.deferred.set(page, [item]);
  }

  /**
   * Handles queued work in arrival order while the page is free. Invalidations only ever wait
   * while a grant is held: if queued work makes the page busy otherwise (a request, say), they
   * are handled at once, since that request may wait on the very transaction that invalidates.
   */
  private drain(page: PageNumber): void {
    const list = this.deferred.get(page);
    if (!list) return;
    while (list.length > 0) {
      const busy = this.busy.get(page);
      if (busy === undefined) {
        const item = list.shift()!;
        if (item.kind === "fault") this.handleFault(page, item.access);
        else if (item.kind === "forward") this.serve(item.fwd);
        else this.invalidate(item.inv);
      } else if (busy.kind !== "holding") {
        const i = list.findIndex((item) => item.kind === "invalidate");
        if (i < 0) break;
        this.invalidate((list.splice(i, 1)[0] as Extract<Deferred, { kind: "invalidate" }>).inv);
      } else break;
    }
    if (list.length === 0) this.deferred.delete(page);
  }

  private release(page: PageNumber, holding: Extract<Busy, { kind: "holding" }>): void {
    this.busy.delete(page);
    if (holding.confirm) this.send(this.managerOf(page), { type: "dsm-confirm", page, access: holding.confirm });
  }

  private isNode(n: unknown): boolean {
    return typeof n === "number" && Number.isInteger(n) && n >= 0 && n < this.nodes;
  }

  private protocolPage(page: unknown, what: string): PageNumber {
    if (typeof page !== "number" || !Number.isInteger(page) || page < 0 || page >= this.pages)
      throw new DsmProtocolError(`${what} names page ${String(page)}, outside guest RAM (0..${this.pages - 1})`);
    return page;
  }

  private dispatch(from: NodeId, msg: DsmMessage): void {
    switch (msg.type) {
      case "dsm-request":
        return this.onRequest(from, msg);
      case "dsm-forward":
        return this.onForward(from, msg);
      case "dsm-grant":
        return this.onGrant(from, msg);
      case "dsm-invalidate":
        return this.onInvalidate(from, msg);
      case "dsm-invalidate-ack":
        return this.onInvalidateAck(from, msg);
      case "dsm-confirm":
        return this.onConfirm(from, msg);
      default:
        throw new DsmProtocolError(`not a DSM message: ${String((msg as { type?: unknown }).type)}`);
    }
  }

  // ------------------------------------------------------------ requester side

  private handleFault(page: PageNumber, want: FaultAccess): void {
    const have = this.access[page]!;
    if (have < accessLevel(want)) {
      if (want === "write") this.counters.writeFaults++;
      else this.counters.readFaults++;
    }
    if (have >= accessLevel(want)) {
      // Already allowed (the fault raced a grant): let the engine retry at once.
      this.busy.set(page, { kind: "holding", confirm: null });
      this.effects.push({ type: "grant", page, access: have === WRITE ? "write" : "read", data: { form: "current" } });
    } else if (this.owner[page]) {
      // Shared owner wanting to write: only the other copies need to go, the manager is not involved.
      this.counters.upgrades++;
      const targets = this.copysets.get(page) ?? [];
      this.copysets.delete(page);
      const version = this.version[page]! + 1;
      for (const to of targets) this.sendInvalidate(to, page, version, this.self);
      this.busy.set(page, { kind: "upgrading", version, acksMissing: targets.length });
      if (targets.length === 0) this.finishUpgrade(page, version);
    } else {
      this.counters.requestsSent++;
      this.busy.set(page, { kind: "requesting", access: want, grant: null, acks: 0 });
      this.send(this.managerOf(page), { type: "dsm-request", page, access: want, have: this.version[page]! });
    }
  }

  private finishUpgrade(page: PageNumber, version: PageVersion): void {
    this.version[page] = version;
    this.setAccess(page, WRITE, true);
    this.busy.set(page, { kind: "holding", confirm: null });
    this.effects.push({ type: "grant", page, access: "write", data: { form: "current" } });
  }

  private onGrant(from: NodeId, msg: DsmGrant): void {
    const page = this.protocolPage(msg.page, "dsm-grant");
    const busy = this.busy.get(page);
    if (busy?.kind !== "requesting" || busy.grant !== null)
      throw new DsmProtocolError(`node ${from} granted page ${page}, which node ${this.self} did not request`);
    if (msg.access !== busy.access)
      throw new DsmProtocolError(`node ${from} granted ${msg.access} on page ${page}, ${busy.access} was requested`);
    const copyset = msg.copyset;
    if (
      !Array.isArray(copyset) ||
      !copyset.every((n, i) => this.isNode(n) && n !== this.self && copyset.indexOf(n) === i) ||
      (!msg.owner && copyset.length > 0) ||
      (msg.access === "write" && (!msg.owner || copyset.length > 0))
    )
      throw new DsmProtocolError(`node ${from} granted page ${page} with an impossible owner/copyset`);
    const local = this.version[page]!;
    const newer = msg.access === "write" ? msg.version > local : msg.version >= local;
    if (!isVersion(msg.version) || !newer)
      throw new DsmProtocolError(`node ${from} granted page ${page} at version ${msg.version}, this node has ${local}`);
    const maxAcks = msg.access === "write" ? Math.max(0, this.nodes - 2) : 0;
    if (!Number.isInteger(msg.acks) || msg.acks < 0 || msg.acks > maxAcks)
      throw new DsmProtocolError(`node ${from} granted page ${page} announcing ${msg.acks} invalidation acks`);
    const form = msg.data?.form;
    if (form === "bytes" ? !(msg.data.bytes instanceof Uint8Array) || msg.data.bytes.length !== PAGE_SIZE : form !== "zero" && form !== "current")
      throw new DsmProtocolError(`node ${from} granted page ${page} with malformed page data`);
    if (form === "current" && msg.version !== local && !(msg.access === "write" && msg.version === local + 1))
      throw new DsmProtocolError(`node ${from} sent page ${page} as current, but this node holds version ${local}`);
    busy.grant = msg;
    this.completeRequest(page, busy);
  }

  private onInvalidateAck(from: NodeId, msg: DsmInvalidateAck): void {
    const page = this.protocolPage(msg.page, "dsm-invalidate-ack");
    const busy = this.busy.get(page);
    if (busy?.kind === "upgrading" && busy.version === msg.version && busy.acksMissing > 0) {
      if (--busy.acksMissing === 0) this.finishUpgrade(page, busy.version);
    } else if (busy?.kind === "requesting" && (busy.grant === null || busy.grant.version === msg.version)) {
      busy.acks++;
      this.completeRequest(page, busy);
    } else {
      throw new DsmProtocolError(`unexpected invalidation ack for page ${page} (version ${msg.version}) from node ${from}`);
    }
  }

  private completeRequest(page: PageNumber, busy: Extract<Busy, { kind: "requesting" }>): void {
    const grant = busy.grant;
    if (grant === null || busy.acks < grant.acks) return;
    if (busy.acks > grant.acks) throw new DsmProtocolError(`page ${page}: more invalidation acks than announced`);
    this.version[page] = grant.version;
    this.setAccess(page, accessLevel(grant.access), grant.owner);
    if (grant.owner && grant.copyset.length > 0) this.copysets.set(page, [...grant.copyset]);
    this.busy.set(page, { kind: "holding", confirm: grant.access });
    this.effects.push({ type: "grant", page, access: grant.access, data: grant.data });
  }

  // ------------------------------------------------------------ copy holder side

  private onInvalidate(from: NodeId, msg: DsmInvalidate): void {
    const page = this.protocolPage(msg.page, "dsm-invalidate");
    if (this.owner[page]) throw new DsmProtocolError(`node ${from} invalidated page ${page} at its owner ${this.self}`);
    if (!this.isNode(msg.ackTo) || !isVersion(msg.version) || msg.version === 0)
      throw new DsmProtocolError(`invalidation of page ${page} from node ${from} is malformed (ack to ${msg.ackTo})`);
    if (msg.version <= this.version[page]!)
      throw new DsmProtocolError(`node ${from} invalidated page ${page} for version ${msg.version}, not newer than this copy`);
    this.counters.invalidationsReceived++;
    // Waits for nothing but the local engine: at most until a held grant is released (pinned pages
    // stay for the instruction that needs them), never for another node.
    if (this.busy.get(page)?.kind === "holding") this.defer(page, { kind: "invalidate", inv: msg });
    else this.invalidate(msg);
  }

  private invalidate(msg: DsmInvalidate): void {
    this.setAccess(msg.page, NONE, false);
    this.revoke(msg.page, "none", false, { kind: "invalidate", inv: msg });
  }

  private sendInvalidate(to: NodeId, page: PageNumber, version: PageVersion, ackTo: NodeId): void {
    this.counters.invalidationsSent++;
    this.send(to, { type: "dsm-invalidate", page, version, ackTo });
  }

  // ------------------------------------------------------------ owner side

  private onForward(from: NodeId, msg: DsmForward): void {
    const page = this.protocolPage(msg.page, "dsm-forward");
    if (from !== this.managerOf(page))
      throw new DsmProtocolError(`node ${from} forwarded a request for page ${page}, whose manager is ${this.managerOf(page)}`);
    if (!this.isNode(msg.requester) || msg.requester === this.self)
      throw new DsmProtocolError(`request for page ${page} forwarded by node ${from} names requester ${msg.requester}`);
    if ((msg.access !== "read" && msg.access !== "write") || !isVersion(msg.have))
      throw new DsmProtocolError(`request for page ${page} forwarded by node ${from} is malformed`);
    if (this.busy.has(page)) this.defer(page, { kind: "forward", fwd: msg });
    else this.serve(msg);
  }

  private needsBytes(fwd: DsmForward): boolean {
    return fwd.have !== this.version[fwd.page];
  }

  private serve(fwd: DsmForward): void {
    const page = fwd.page;
    if (!this.owner[page])
      throw new DsmProtocolError(`node ${this.self} was asked to serve page ${page}, which it does not own`);
    if (fwd.requester === this.self || fwd.requester >= this.nodes)
      throw new DsmProtocolError(`request for page ${page} names requester ${fwd.requester}`);
    this.counters.forwardsServed++;
    const bytes = this.needsBytes(fwd);
    if (fwd.access === "write") {
      this.busy.set(page, { kind: "serving", fwd });
      this.setAccess(page, NONE, true);
      this.revoke(page, "none", bytes, { kind: "serve", fwd });
    } else if (bytes || this.access[page] === WRITE) {
      this.busy.set(page, { kind: "serving", fwd });
      this.setAccess(page, READ, true);
      this.revoke(page, "read", bytes, { kind: "serve", fwd });
    } else {
      this.finishServe(fwd, null);
    }
  }

  private finishServe(fwd: DsmForward, bytes: Uint8Array | null): void {
    const page = fwd.page;
    const requester = fwd.requester;
    this.busy.delete(page);
    let data: PageData;
    if (bytes === null) {
      data = { form: "current" };
      this.counters.pagesSentCurrent++;
    } else if (isZeroPage(bytes)) {
      data = { form: "zero" };
      this.counters.pagesSentZero++;
    } else {
      data = { form: "bytes", bytes: bytes.slice() };
      this.counters.pagesSentBytes++;
    }
    const copyset = this.copysets.get(page) ?? [];
    const version = this.version[page]!;
    if (fwd.access === "write") {
      const targets = copyset.filter((n) => n !== requester);
      this.copysets.delete(page);
      this.setAccess(page, NONE, false);
      for (const to of targets) this.sendInvalidate(to, page, version + 1, requester);
      this.sendGrant(requester, page, "write", true, version + 1, [], targets.length, data);
    } else if (this.readTakesOwnership) {
      const next = copyset.filter((n) => n !== requester);
      next.push(this.self);
      next.sort((a, b) => a - b);
      this.copysets.delete(page);
      this.setAccess(page, READ, false);
      this.sendGrant(requester, page, "read", true, version, next, 0, data);
    } else {
      if (!copyset.includes(requester)) this.copysets.set(page, [...copyset, requester].sort((a, b) => a - b));
      this.setAccess(page, READ, true);
      this.sendGrant(requester, page, "read", false, version, [], 0, data);
    }
  }

  private sendGrant(
    to: NodeId,
    page: PageNumber,
    access: FaultAccess,
    owner: boolean,
    version: PageVersion,
    copyset: NodeId[],
    acks: number,
    data: PageData,
  ): void {
    this.send(to, { type: "dsm-grant", page, access, owner, version, copyset, acks, data });
  }

  // ------------------------------------------------------------ manager side

  private onRequest(from: NodeId, msg: DsmRequest): void {
    const page = this.protocolPage(msg.page, "dsm-request");
    if (this.managerOf(page) !== this.self)
      throw new DsmProtocolError(`node ${from} asked node ${this.self} about page ${page}, managed by ${this.managerOf(page)}`);
    if ((msg.access !== "read" && msg.access !== "write") || !isVersion(msg.have))
      throw new DsmProtocolError(`request for page ${page} from node ${from} is malformed`);
    const queue = this.managerQueues.get(page);
    const item = { requester: from, access: msg.access, have: msg.have };
    if (queue) {
      if (queue.some((q) => q.requester === from))
        throw new DsmProtocolError(`node ${from} has two outstanding requests for page ${page}`);
      queue.push(item);
    } else {
      this.managerQueues.set(page, [item]);
      this.startTransaction(page, item);
    }
  }

  private startTransaction(page: PageNumber, item: QueuedRequest): void {
    const owner = this.managedOwner[page]!;
    if (owner === item.requester)
      throw new DsmProtocolError(`node ${owner} requested page ${page} that it owns`);
    this.send(owner, { type: "dsm-forward", page, access: item.access, requester: item.requester, have: item.have });
  }

  private onConfirm(from: NodeId, msg: DsmConfirm): void {
    const page = this.protocolPage(msg.page, "dsm-confirm");
    const queue = this.managerQueues.get(page);
    const head = queue?.[0];
    if (!queue || !head || head.requester !== from || head.access !== msg.access)
      throw new DsmProtocolError(`node ${from} confirmed a transaction on page ${page} that is not in progress`);
    if (head.access === "write" || this.readTakesOwnership) this.managedOwner[page] = from;
    queue.shift();
    if (queue.length === 0) this.managerQueues.delete(page);
    else this.startTransaction(page, queue[0]!);
  }
}

function isVersion(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

function isZeroPage(bytes: Uint8Array): boolean {
  // Compare 32 bits at a time when the view is aligned; pages are 4096 bytes.
  if (bytes.byteOffset % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
