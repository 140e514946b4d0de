// One node's half of the DSM coherence protocol: Ivy-style, 4 KiB pages, Invalid/Shared/Modified.
//
// Manager scheme: a FIXED DISTRIBUTED MANAGER (page p is managed by node p mod N, N the number of
// node slots, when slot p mod N is a member of the VM, else by node 0) that serialises
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
// Membership (nodes joining and leaving a running VM; see membership.ts): changes happen only at
// GLOBAL QUIESCENCE, with every engine paused and no transaction in flight anywhere. A join of slot
// k moves the manager role of slot k's pages from node 0 to k (node 0 sends k its records,
// `dsm-records`); k starts with no pages. A leave of k hands k's pages to node 0 (`dsm-handoff`: same
// version, copyset without k, bytes) and its manager records back to node 0, and every other node
// forgets k (drops it from copysets; records saying "owner k" now say node 0). Since no transaction
// spans a change, the arguments above (deadlock, livelock, sequential consistency) are unaffected:
// each stretch between two changes is a run of the fixed-manager protocol from a coherent state.
//
// Pure: no timers, no I/O, no globals. Inputs are method calls, outputs are DsmEffect lists.

import type {
  DsmConfirm,
  DsmForward,
  DsmGrant,
  DsmHandoff,
  DsmInvalidate,
  DsmInvalidateAck,
  DsmMessage,
  DsmRecords,
  DsmRequest,
  HandoffPage,
  ManagerRecord,
  PageData,
  PageRun,
} from "../messages.ts";
import { MAX_HANDOFF_PAGES, MAX_MANAGER_RECORDS } from "../messages.ts";
import type { Access, FaultAccess, NodeId, PageNumber, PageState, PageVersion } from "../types.ts";
import { MAX_NODES, PAGE_SIZE } from "../types.ts";
import type { DsmEffect } from "./effects.ts";
import { DsmProtocolError, DsmUsageError } from "./effects.ts";

export interface DsmConfig {
  /** This node's id, 0..nodes-1. Node 0 starts owning every page, Modified, at version 1. */
  self: NodeId;
  /** Node SLOTS: ids 0..nodes-1 (at most MAX_NODES); page p's manager is slot p mod nodes if a member. */
  nodes: number;
  /**
   * The members live when this node starts (default: every slot). Must hold node 0 and `self`.
   * Nodes that start together must be given the same set.
   */
  members?: readonly NodeId[];
  /**
   * This node joins a running VM (`members` is the set after the join): it starts with no pages
   * and awaits node 0's `dsm-records` for the pages it will manage (not quiescent until then).
   */
  joining?: boolean;
  /** Guest RAM in pages; page numbers are 0..pages-1. */
  pages: number;
  /** A read fault also moves ownership to the reader (default true). */
  readTakesOwnership?: boolean;
  /**
   * Mirage's window (default off): a page that arrived here to be written stays for a while after
   * its accessDone. The node emits a `hold` effect; forwarded requests for the page wait
   * until the driver calls `holdOver(page)` (after its window, which it chooses; at once is no hold).
   */
  holdGrants?: boolean;
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
  /** In its hold window (see DsmConfig.holdGrants); `heldForward`: a request waits for its end. */
  held: boolean;
  heldForward: boolean;
  /** Only at the page's manager: who it believes owns the page, and transactions queued. */
  manager: { owner: NodeId; queued: number } | null;
}

/** What a node tells the membership coordinator (see membership.ts). */
export interface DsmQuiescenceReport {
  node: NodeId;
  quiescent: boolean;
  /** DSM messages sent to / received from each node slot (index = node id) since that node joined. */
  sent: number[];
  received: number[];
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
  /**
   * Granted; waiting for the engine's accessDone. `confirm` is owed to the manager; `window`: the
   * page's hold window starts at the accessDone (holdGrants).
   */
  | { kind: "holding"; confirm: FaultAccess | null; window?: true }
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
  readonly holdGrants: boolean;
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
  /** Pages in their hold window, and the forwarded request (at most one: the manager serialises) waiting for its end. */
  private readonly inWindow = new Set<PageNumber>();
  private readonly windowForwards = new Map<PageNumber, DsmForward>();

  private effects: DsmEffect[] = [];
  private readonly loopback: DsmMessage[] = [];

  // Membership. `member[n]` is 1 for live members (self included). Counts of DSM messages per peer
  // for the quiescence check; reset for a node when it joins (all counts are balanced then).
  private readonly member: Uint8Array;
  private readonly sentTo: number[];
  private readonly receivedFrom: number[];
  /** Managed pages whose record has not arrived yet (a joining node; node 0 during a leave). */
  private readonly recordsMissing = new Set<PageNumber>();
  /** At node 0 while a leave is being handed over: who leaves, and whether its last handoff came. */
  private leaving: { node: NodeId; handoffDone: boolean } | null = null;
  /** This node left the VM: it holds nothing and takes no more input. */
  private left = false;

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
    this.holdGrants = config.holdGrants ?? false;
    this.access = new Uint8Array(pages);
    this.owner = new Uint8Array(pages);
    this.version = new Float64Array(pages);
    this.managedOwner = new Uint8Array(pages); // every page starts owned by node 0
    this.member = new Uint8Array(nodes);
    const members = config.members ?? Array.from({ length: nodes }, (_, n) => n);
    if (!Array.isArray(members)) throw new DsmUsageError("members is not an array");
    for (const n of members) {
      if (!Number.isInteger(n) || n < 0 || n >= nodes || this.member[n])
        throw new DsmUsageError(`members lists ${n}: expected distinct node ids in 0..${nodes - 1}`);
      this.member[n] = 1;
    }
    if (!this.member[0] || !this.member[self])
      throw new DsmUsageError(`members [${members.join(", ")}] must include node 0 and this node (${self})`);
    this.sentTo = new Array<number>(nodes).fill(0);
    this.receivedFrom = new Array<number>(nodes).fill(0);
    if (config.joining) {
      if (self === 0) throw new DsmUsageError("node 0 starts the VM; it cannot join one");
      for (let p = self; p < pages; p += nodes) this.recordsMissing.add(p);
    } else if (self === 0) {
      this.access.fill(WRITE);
      this.owner.fill(1);
      this.version.fill(1);
    }
  }

  /** The node that serialises the transactions of `page`: its slot if that is a member, else node 0. */
  managerOf(page: PageNumber): NodeId {
    const slot = page % this.nodes;
    return this.member[slot] ? slot : 0;
  }

  isMember(node: NodeId): boolean {
    return this.member[node] === 1;
  }

  /** The live members, ascending (this node's view). */
  members(): NodeId[] {
    const out: NodeId[] = [];
    for (let n = 0; n < this.nodes; n++) if (this.member[n]) out.push(n);
    return out;
  }

  /** This node's report for the membership coordinator's quiescence check. */
  quiescenceReport(): DsmQuiescenceReport {
    return { node: this.self, quiescent: this.isQuiescent(), sent: [...this.sentTo], received: [...this.receivedFrom] };
  }

  /** True once `leave()` ran: the node holds nothing; discard it. */
  hasLeft(): boolean {
    return this.left;
  }

  // ------------------------------------------------------------ membership changes (at global quiescence)

  /**
   * Node `k` joins (call at every current member, at global quiescence, before any engine resumes).
   * Node 0 answers with the manager records of slot k's pages, which k manages from now on; the
   * new node itself is a fresh DsmNode built with `joining: true`.
   */
  addMember(k: NodeId): DsmEffect[] {
    this.checkChange(k, "join");
    if (this.member[k]) throw new DsmUsageError(`node ${k} is already a member`);
    return this.run(() => {
      this.member[k] = 1;
      this.sentTo[k] = 0;
      this.receivedFrom[k] = 0;
      if (this.self === 0) this.sendRecords(k, k);
    });
  }

  /**
   * Node `k` leaves (call at every remaining member, at global quiescence, while k calls `leave`).
   * Drops k from every copyset kept here; as a manager, records saying "owner k" now say node 0,
   * which adopts k's pages. Node 0 then awaits k's handoff and records (not quiescent until then).
   */
  removeMember(k: NodeId): DsmEffect[] {
    this.checkChange(k, "leave");
    if (k === 0) throw new DsmUsageError("node 0 holds the devices and never leaves");
    if (!this.member[k]) throw new DsmUsageError(`node ${k} is not a member`);
    return this.run(() => {
      this.member[k] = 0;
      this.forget(k);
      if (this.self === 0) {
        this.leaving = { node: k, handoffDone: false };
        for (let p = k; p < this.pages; p += this.nodes) this.recordsMissing.add(p);
      }
    });
  }

  /**
   * This node leaves (at global quiescence, its engine stopped for good). Sends node 0 the manager
   * records of the pages it manages and every page it owns (version, copyset, bytes read with
   * `pageBytes` from local memory; `current` when node 0 holds a copy), in bounded batches; then it
   * holds nothing.
   */
  leave(pageBytes: (page: PageNumber) => Uint8Array): DsmEffect[] {
    if (this.self === 0) throw new DsmUsageError("node 0 holds the devices and never leaves");
    if (this.left) throw new DsmUsageError(`node ${this.self} has already left`);
    if (!this.isQuiescent()) throw new DsmUsageError(`node ${this.self} cannot leave while transactions are in flight`);
    return this.run(() => {
      this.sendRecords(this.self, 0);
      let batch: HandoffPage[] = [];
      for (let page = 0; page < this.pages; page++) {
        if (!this.owner[page]) continue;
        const copyset = this.copysets.get(page) ?? [];
        let data: PageData;
        if (copyset.includes(0)) data = { form: "current" };
        else {
          const bytes = pageBytes(page);
          if (!(bytes instanceof Uint8Array) || bytes.length !== PAGE_SIZE)
            throw new DsmUsageError(`pageBytes(${page}) must return the page's ${PAGE_SIZE} bytes`);
          data = isZeroPage(bytes) ? { form: "zero" } : { form: "bytes", bytes: bytes.slice() };
        }
        batch.push({ page, version: this.version[page]!, copyset: [...copyset], data });
        if (batch.length === MAX_HANDOFF_PAGES) {
          this.send(0, { type: "dsm-handoff", pages: batch, last: false });
          batch = [];
        }
      }
      this.send(0, { type: "dsm-handoff", pages: batch, last: true });
      for (let page = 0; page < this.pages; page++) {
        if (this.access[page] !== NONE || this.owner[page]) this.setAccess(page, NONE, false);
        this.version[page] = 0;
      }
      this.copysets.clear();
      this.inWindow.clear();
      this.member.fill(0);
      this.left = true;
    });
  }

  private checkChange(k: NodeId, what: string): void {
    if (this.left) throw new DsmUsageError(`node ${this.self} has left`);
    if (!Number.isInteger(k) || k < 0 || k >= this.nodes)
      throw new DsmUsageError(`${what} of node ${k}: expected a node id in 0..${this.nodes - 1}`);
    if (k === this.self) throw new DsmUsageError(`node ${k} cannot ${what} at itself`);
    if (!this.isQuiescent())
      throw new DsmUsageError(`${what} of node ${k} while node ${this.self} has transactions in flight (changes need global quiescence)`);
  }

  /** Sends `to` this node's manager records of slot `slot`'s pages, in batches. */
  private sendRecords(slot: NodeId, to: NodeId): void {
    let batch: ManagerRecord[] = [];
    for (let page = slot; page < this.pages; page += this.nodes) {
      batch.push({ page, owner: this.managedOwner[page]! });
      this.managedOwner[page] = 0;
      if (batch.length === MAX_MANAGER_RECORDS) {
        this.send(to, { type: "dsm-records", records: batch });
        batch = [];
      }
    }
    if (batch.length > 0) this.send(to, { type: "dsm-records", records: batch });
  }

  /** Node k is gone: no copy of it remains, and node 0 owns what it owned. */
  private forget(k: NodeId): void {
    for (const [page, copyset] of this.copysets) {
      const i = copyset.indexOf(k);
      if (i < 0) continue;
      copyset.splice(i, 1);
      if (copyset.length === 0) this.copysets.delete(page);
    }
    for (let page = 0; page < this.pages; page++)
      if (this.managerOf(page) === this.self && this.managedOwner[page] === k) this.managedOwner[page] = 0;
  }

  private onRecords(from: NodeId, msg: DsmRecords): void {
    const source = this.leaving !== null ? this.leaving.node : 0;
    if (from !== source || this.recordsMissing.size === 0)
      throw new DsmProtocolError(`node ${from} sent manager records node ${this.self} does not expect`);
    if (!Array.isArray(msg.records) || msg.records.length === 0 || msg.records.length > MAX_MANAGER_RECORDS)
      throw new DsmProtocolError(`manager records from node ${from} are malformed`);
    for (const rec of msg.records) {
      const page = this.protocolPage(rec?.page, "dsm-records");
      if (!this.recordsMissing.has(page))
        throw new DsmProtocolError(`node ${from} sent a manager record of page ${page}, which node ${this.self} does not await`);
      // A leaving node's pages all go to node 0; any other owner must be a live member (not the joiner).
      const owner = this.leaving !== null && rec.owner === from ? 0 : rec.owner;
      if (!this.isNode(owner) || !this.member[owner] || (this.leaving === null && owner === this.self))
        throw new DsmProtocolError(`node ${from} says page ${page} is owned by node ${rec.owner}, not a possible owner`);
      this.managedOwner[page] = owner;
      this.recordsMissing.delete(page);
    }
    this.finishLeave();
  }

  private onHandoff(from: NodeId, msg: DsmHandoff): void {
    if (this.leaving === null || this.leaving.node !== from || this.leaving.handoffDone)
      throw new DsmProtocolError(`node ${from} handed over pages node ${this.self} does not expect`);
    if (!Array.isArray(msg.pages) || msg.pages.length > MAX_HANDOFF_PAGES)
      throw new DsmProtocolError(`handoff from node ${from} is malformed`);
    for (const hp of msg.pages) {
      const page = this.protocolPage(hp?.page, "dsm-handoff");
      if (this.owner[page] || this.busy.has(page))
        throw new DsmProtocolError(`node ${from} handed over page ${page}, which node ${this.self} owns or uses`);
      const copyset = hp.copyset;
      if (
        !Array.isArray(copyset) ||
        !copyset.every((n, i) => this.isNode(n) && this.member[n] === 1 && copyset.indexOf(n) === i)
      )
        throw new DsmProtocolError(`node ${from} handed over page ${page} with copyset [${String(copyset)}]`);
      const holds = this.access[page] !== NONE;
      const local = this.version[page]!;
      if (!isVersion(hp.version) || hp.version < 1 || hp.version < local || (holds && hp.version !== local))
        throw new DsmProtocolError(`node ${from} handed over page ${page} at version ${hp.version}, node ${this.self} has ${local}`);
      if (holds !== copyset.includes(this.self))
        throw new DsmProtocolError(
          `node ${from} handed over page ${page} with a copyset that ${holds ? "omits" : "lists"} node ${this.self}, which ${holds ? "holds" : "has no"} a copy`,
        );
      const form = hp.data?.form;
      if (form === "bytes" ? !(hp.data.bytes instanceof Uint8Array) || hp.data.bytes.length !== PAGE_SIZE : form !== "zero" && form !== "current")
        throw new DsmProtocolError(`node ${from} handed over page ${page} with malformed page data`);
      if (form === "current" && !holds)
        throw new DsmProtocolError(`node ${from} handed over page ${page} as current, but node ${this.self} holds no copy`);
      // Adopt as shared-owner at the same version: a later local write bumps the version as usual.
      const others = copyset.filter((n) => n !== this.self);
      this.version[page] = hp.version;
      this.setAccess(page, READ, true);
      if (others.length > 0) this.copysets.set(page, others);
      // The engine installs the bytes; the grant is held until its accessDone like any other.
      this.busy.set(page, { kind: "holding", confirm: null });
      this.effects.push({ type: "grant", page, access: "read", data: hp.data });
    }
    if (msg.last === true) this.leaving.handoffDone = true;
    else if (msg.pages.length === 0) throw new DsmProtocolError(`empty handoff batch from node ${from}`);
    this.finishLeave();
  }

  private finishLeave(): void {
    if (this.leaving?.handoffDone && this.recordsMissing.size === 0) this.leaving = null;
  }

  // ------------------------------------------------------------ inputs

  /** The local engine touched `page` without sufficient access. */
  onLocalFault(page: PageNumber, access: FaultAccess): DsmEffect[] {
    this.checkPage(page);
    if (access !== "read" && access !== "write") throw new DsmUsageError(`fault access is ${String(access)}`);
    if (this.left || this.recordsMissing.size > 0 || this.leaving !== null)
      throw new DsmUsageError(`local fault on page ${page} while a membership change is in progress (engines stay paused until it completes)`);
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

  /**
   * The hold window of `page` (a `hold` effect) is over: a forwarded request waiting for it is
   * served now. Call it within bounded time whatever other nodes do, even while the local vCPU
   * waits for another page: a request waits on it like on an accessDone. After `leave()` it does nothing.
   */
  holdOver(page: PageNumber): DsmEffect[] {
    this.checkPage(page);
    if (this.left) return [];
    if (!this.inWindow.has(page)) throw new DsmUsageError(`holdOver(${page}) without a hold window open`);
    return this.run(() => {
      this.inWindow.delete(page);
      const fwd = this.windowForwards.get(page);
      if (fwd === undefined) return;
      this.windowForwards.delete(page);
      this.takeForward(fwd);
    });
  }

  /** A DSM message from another node (links deliver each pair's messages in order). */
  onMessage(from: NodeId, msg: DsmMessage): DsmEffect[] {
    if (!Number.isInteger(from) || from < 0 || from >= this.nodes || from === this.self)
      throw new DsmProtocolError(`message from node ${from}, expected another node in 0..${this.nodes - 1}`);
    if (this.left) throw new DsmProtocolError(`message from node ${from} to node ${this.self}, which has left the VM`);
    // A leaving node is no member any more, but its handoff and records still arrive at node 0.
    const handingOver = this.leaving?.node === from && (msg?.type === "dsm-handoff" || msg?.type === "dsm-records");
    if (!this.member[from] && !handingOver)
      throw new DsmProtocolError(`${String(msg?.type)} from node ${from}, which is not a member of the VM (as node ${this.self} knows it)`);
    this.receivedFrom[from]!++;
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
      held: this.inWindow.has(page),
      heldForward: this.windowForwards.has(page),
      manager: managed
        ? { owner: this.managedOwner[page]!, queued: this.managerQueues.get(page)?.length ?? 0 }
        : null,
    };
  }

  /** Forwarded requests waiting for the end of a hold window here. */
  get requestsInWindows(): number {
    return this.windowForwards.size;
  }

  /** True when nothing is in flight at this node (no transaction, queue or revoke pending). */
  isQuiescent(): boolean {
    return (
      this.busy.size === 0 &&
      this.deferred.size === 0 &&
      this.revokes.size === 0 &&
      this.windowForwards.size === 0 &&
      this.managerQueues.size === 0 &&
      this.recordsMissing.size === 0 &&
      this.leaving === null
    );
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
    else {
      this.sentTo[to]!++;
      this.effects.push({ type: "send", to, msg });
    }
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
        else if (item.kind === "forward") this.serveOrWait(item.fwd);
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
    // The window opens only once the engine used the page: a request that comes meanwhile waits
    // for work done here, not for time spent fetching.
    if (holding.window && this.owner[page] && !this.inWindow.has(page)) {
      this.inWindow.add(page);
      this.effects.push({ type: "hold", page });
    }
  }

  private isNode(n: unknown): boolean {
    return typeof n === "number" && Number.isInteger(n) && n >= 0 && n < this.nodes;
  }

  private isMemberId(n: unknown): boolean {
    return this.isNode(n) && this.member[n as number] === 1;
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
      case "dsm-handoff":
        return this.onHandoff(from, msg);
      case "dsm-records":
        return this.onRecords(from, msg);
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
      !copyset.every((n, i) => this.isMemberId(n) && n !== this.self && copyset.indexOf(n) === i) ||
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
    // Only a page that came to be written gets a window: one that came for a read (with ownership,
    // readTakesOwnership) would keep its writer waiting while the reader holds it for nothing (the
    // tick's jiffies: read on one CPU, written on the other); measured in the census, issue 16.
    this.busy.set(page, grant.access === "write" && this.holdGrants ? { kind: "holding", confirm: grant.access, window: true } : { kind: "holding", confirm: grant.access });
    this.effects.push({ type: "grant", page, access: grant.access, data: grant.data });
  }

  // ------------------------------------------------------------ copy holder side

  private onInvalidate(from: NodeId, msg: DsmInvalidate): void {
    const page = this.protocolPage(msg.page, "dsm-invalidate");
    if (this.owner[page]) throw new DsmProtocolError(`node ${from} invalidated page ${page} at its owner ${this.self}`);
    if (!this.isMemberId(msg.ackTo) || !isVersion(msg.version) || msg.version === 0)
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
    if (!this.isMemberId(msg.requester) || msg.requester === this.self)
      throw new DsmProtocolError(`request for page ${page} forwarded by node ${from} names requester ${msg.requester}`);
    if ((msg.access !== "read" && msg.access !== "write") || !isVersion(msg.have))
      throw new DsmProtocolError(`request for page ${page} forwarded by node ${from} is malformed`);
    this.takeForward(msg);
  }

  /** A forwarded request waits while the page is busy, then for its hold window, then is served. */
  private takeForward(fwd: DsmForward): void {
    if (this.busy.has(fwd.page)) this.defer(fwd.page, { kind: "forward", fwd });
    else this.serveOrWait(fwd);
  }

  /** Serves a forwarded request unless the page is in its hold window, where it waits for holdOver. */
  private serveOrWait(fwd: DsmForward): void {
    if (!this.inWindow.has(fwd.page)) return this.serve(fwd);
    if (this.windowForwards.has(fwd.page))
      throw new DsmProtocolError(`two requests for page ${fwd.page} forwarded to node ${this.self} at once`);
    this.windowForwards.set(fwd.page, fwd);
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
    if (this.recordsMissing.has(page))
      throw new DsmProtocolError(
        `node ${from} asked node ${this.self} about page ${page} before its manager record arrived (a membership change was not complete)`,
      );
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
