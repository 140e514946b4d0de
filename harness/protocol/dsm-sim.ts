// Deterministic simulation of the DSM protocol: N DsmNodes, a network with random per-link delays
// that keeps each link's order (FIFO), engines that model each node's own copy of guest memory and
// complete revokes asynchronously, and vCPUs running random reads, writes and atomic increments.
//
// The checker: every operation executes at one instant of simulated time, so the simulation's
// event order is a global order of all operations that respects each node's program order. Each
// read is checked against the latest write in that order ("truth"), which proves sequential
// consistency (indeed linearizability). On top: single writer / multiple readers at every write,
// exact totals of atomic increments, every run finishes (all operations done: no deadlock) within
// a bounded number of events (no livelock), and the final state is coherent.
//
// Membership (issue 14): a VM may boot with only some node slots live, and at random points the
// simulation changes members the way the runtime must: it stops issuing new operations (pause),
// drives messages while a MembershipCoordinator collects the nodes' quiescence reports (each taken
// at its own random instant, so rounds are not atomic cuts), applies a join (a free slot, possibly
// one that left before) or a leave (a member other than node 0, whose remaining operations are
// dropped) once the coordinator declares global quiescence, waits for the change to complete, and
// resumes. On top of the checks above: after a leave the departed node is referenced nowhere (no
// copyset, no manager record, no member list) and holds nothing, and departed nodes never hold a
// page again.

import { decode, encode } from "../../src/protocol/codec.ts";
import type { DsmEffect } from "../../src/protocol/dsm/effects.ts";
import { MembershipCoordinator } from "../../src/protocol/dsm/membership.ts";
import type { MembershipChange } from "../../src/protocol/dsm/membership.ts";
import { DsmNode, zeroDsmCounters } from "../../src/protocol/dsm/node.ts";
import type { DsmCounters } from "../../src/protocol/dsm/node.ts";
import type { DsmMessage } from "../../src/protocol/messages.ts";
import { emptyCounters, PageStateMirror } from "../../src/protocol/stats.ts";
import { PAGE_SIZE } from "../../src/protocol/types.ts";
import type { FaultAccess } from "../../src/protocol/types.ts";
import { Prng } from "./prng.ts";

/** Protocol bugs the network can inject, to prove the checker catches them. */
export type Mutation =
  /** An invalidation is dropped and a forged ack sent in its place: the old copy survives. */
  | "skip-invalidate"
  /** A grant's page bytes are replaced by the "zero page" form. */
  | "zero-data"
  /** At a leave, one remaining node (not node 0) is not told: it keeps the leaver in its copysets and records. */
  | "skip-forget"
  /** A leaving node's handoff loses the copyset entries other than node 0: node 0 adopts pages thinking they have no copies. */
  | "handoff-drops-copyset"
  /** The driver never ends a hold window (needs holdGrants): requests for a held page wait forever. */
  | "hold-forever";

export interface SimOptions {
  seed: number;
  nodes: number;
  pages: number;
  opsPerNode: number;
  /** vCPUs sharing one node's memory (a tab hosting a slice); each runs its own operations. */
  vcpusPerNode: number;
  readTakesOwnership: boolean;
  /** Largest one-way delay in ticks (heavy tail: 5% of messages take up to 10x). */
  maxDelay: number;
  /** Largest pause between one vCPU's operations. */
  maxThink: number;
  /** Send every message through encode/decode. */
  codec?: boolean;
  mutation?: Mutation;
  /** Check single-writer/multiple-readers at every write (default on; off to test the read checks alone). */
  checkSwmr?: boolean;
  /**
   * Every this many events, each node's page-state changes go into a stats snapshot, through the
   * codec, into a viewer's mirror; at the end the mirrors must equal the nodes' real states.
   */
  snapshotEvery?: number;
  /**
   * How a vCPU treats the pages of an instruction that needs several at once (default "pin"):
   * "pin" keeps the grants of the lower-numbered pages while it faults on the next one (ordered
   * pinning: deadlock- and livelock-free); "release" lets every grant go before faulting again,
   * which is deadlock-free but can livelock (two nodes stealing each other's pages forever).
   */
  discipline?: "pin" | "release";
  /** Node slots live at boot (default: all); always holds node 0. */
  initialMembers?: number[];
  /** Membership changes (joins and leaves) to make at random points of the run (default 0). */
  membershipChanges?: number;
  /** Nodes hold pages that arrived with their ownership for a window after use (DsmConfig.holdGrants). */
  holdGrants?: boolean;
  /** Longest hold window in ticks (each window is drawn in 0..holdWindow; default maxDelay). */
  holdWindow?: number;
}

export interface SimResult {
  options: SimOptions;
  violations: string[];
  opsDone: number;
  opsTotal: number;
  events: number;
  messages: number;
  mutationsApplied: number;
  /** Operations that needed two pages at once. */
  multiPageOps: number;
  /** DSM counters summed over the nodes: shows which protocol paths the run exercised. */
  counters: DsmCounters;
  /** Membership changes completed; rejoins are joins of a slot that had left before. */
  joins: number;
  leaves: number;
  rejoins: number;
  /** Pages handed to node 0 by leaving nodes. */
  pagesHandedOver: number;
  /** Changes applied while operations were still to run (in the middle of the workload). */
  midRunChanges: number;
  /** Most report rounds one change needed (draining, then completing). */
  maxRounds: number;
  /** Hold windows opened, and those at whose end a forwarded request was waiting. */
  holds: number;
  holdsWaited: number;
}

/** `copy` reads a word of `src` and writes it to `page`: an instruction that needs two pages at once. */
type OpKind = "read" | "write" | "inc" | "copy";
interface Op {
  kind: OpKind;
  page: number;
  offset: number;
  value: number;
  src?: { page: number; offset: number };
}

type Event =
  | { kind: "deliver"; from: number; to: number; msg: DsmMessage }
  | { kind: "issue"; node: number; vcpu: number }
  | { kind: "retry"; node: number; page: number }
  | { kind: "revoke-done"; node: number; page: number; level: number; wantBytes: boolean }
  | { kind: "change" }
  | { kind: "round" }
  | { kind: "report"; node: number; round: number }
  /** The driver ends a hold window; `dsm` is the node that opened it (a slot that left and rejoined has a new one). */
  | { kind: "hold-over"; node: number; dsm: DsmNode; page: number };

interface Scheduled {
  time: number;
  seq: number;
  event: Event;
}

/** Binary min-heap on (time, seq): equal times keep scheduling order. */
class EventQueue {
  private heap: Scheduled[] = [];
  get size(): number {
    return this.heap.length;
  }
  push(item: Scheduled): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
const less = (a: Scheduled, b: Scheduled) => a.time < b.time || (a.time === b.time && a.seq < b.seq);

const WORD_OFFSETS = [0, 4, 1024, PAGE_SIZE - 4];
const COUNTER_OFFSET = 2048;
const READ_OFFSETS = [...WORD_OFFSETS, COUNTER_OFFSET];

interface Engine {
  mem: Uint8Array[];
  views: DataView[];
  access: Uint8Array; // what the engine's mapping allows right now
  revokesPending: Uint16Array;
  /** Per page: how many vCPUs pin the node's current grant (accessDone when it drops to 0). */
  pins: Uint16Array;
  /** Per page: vCPUs whose faults the DSM will answer, in order (one grant per fault). */
  faults: Map<number, number[]>;
  lastRevokeAt: number;
  vcpus: Vcpu[];
}

interface Vcpu {
  ops: Op[];
  next: number;
  waiting: Op | null;
  waitPage: number;
  /** This vCPU has a fault on waitPage that the DSM has not answered yet. */
  faultPending: boolean;
  /** Pages this vCPU keeps pinned for its current instruction. */
  pinned: number[];
}

export function simOptionsForSeed(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const rng = new Prng(seed * 7919 + 17);
  const nodes = 2 + rng.int(7);
  return {
    seed,
    nodes,
    // Mostly a few contended pages; a quarter of the runs have more pages than nodes, so that every
    // node (page p is managed by node p mod N) is a manager too, not only nodes 0..3.
    pages: rng.chance(0.25) ? nodes + 1 + rng.int(2 * nodes) : 1 + rng.int(4),
    opsPerNode: 4 + rng.int(40),
    vcpusPerNode: rng.chance(0.6) ? 1 : 2 + rng.int(2),
    readTakesOwnership: rng.chance(0.5),
    maxDelay: 1 + rng.int(20),
    maxThink: rng.int(15),
    // Drawn last, so the fields above are what they were before membership changes existed.
    ...membershipFor(rng, nodes),
    // And after those, so a seed's membership changes are what they were before hold windows.
    holdGrants: rng.chance(0.5),
    ...overrides,
  };
}

/** A change that needs more report rounds than this is stuck (healthy runs: see SimResult.maxRounds). */
const MAX_ROUNDS = 500;

function membershipFor(rng: Prng, nodes: number): Pick<SimOptions, "initialMembers" | "membershipChanges"> {
  const membershipChanges = rng.chance(0.3) ? 0 : 1 + rng.int(3);
  // Half the VMs boot with every slot live, the others with node 0 and a random few.
  const initialMembers = rng.chance(0.5)
    ? Array.from({ length: nodes }, (_, n) => n)
    : [0, ...Array.from({ length: nodes - 1 }, (_, i) => i + 1).filter(() => rng.chance(0.4))];
  return { initialMembers, membershipChanges };
}

export function runSimulation(options: SimOptions): SimResult {
  const { nodes, pages } = options;
  const rng = new Prng(options.seed);
  const violations: string[] = [];
  const violate = (what: string) => {
    if (violations.length < 20) violations.push(`t=${now}: ${what}`);
  };

  const members = new Set(options.initialMembers ?? Array.from({ length: nodes }, (_, n) => n));
  if (!members.has(0)) throw new Error("sim: node 0 must be an initial member");
  const newNode = (self: number, joining: boolean) =>
    new DsmNode({
      self,
      nodes,
      pages,
      members: [...members].sort((a, b) => a - b),
      joining,
      readTakesOwnership: options.readTakesOwnership,
      holdGrants: options.holdGrants ?? false,
    });
  /** The live DsmNode of each slot (null: not a member). */
  const dsm: (DsmNode | null)[] = Array.from({ length: nodes }, (_, self) => (members.has(self) ? newNode(self, false) : null));
  const everyDsm: DsmNode[] = dsm.filter((d): d is DsmNode => d !== null);
  const live = (n: number): DsmNode => {
    const d = dsm[n];
    if (!d) throw new Error(`sim: node ${n} is not a member`);
    return d;
  };
  const truth = Array.from({ length: pages }, () => new Uint8Array(PAGE_SIZE));
  const truthViews = truth.map((t) => new DataView(t.buffer));
  const incs = new Array<number>(pages).fill(0);

  // Node 0's memory starts with the "loaded image": some pages carry data, the rest are zero.
  for (let p = 0; p < pages; p++)
    if (rng.chance(0.5)) for (const off of WORD_OFFSETS) truthViews[p]!.setUint32(off, rng.next(), true);

  let opId = 0;
  let opsTotal = 0;
  let multiPageOps = 0;
  function makeVcpus(): Vcpu[] {
    const vcpus: Vcpu[] = [];
    for (let v = 0; v < options.vcpusPerNode; v++) {
      const ops: Op[] = [];
      const hot = rng.int(pages); // contention: each vCPU prefers one page
      for (let i = 0; i < options.opsPerNode; i++) {
        const page = rng.chance(0.5) ? hot : rng.int(pages);
        const r = rng.int(10);
        const kind: OpKind = pages > 1 && rng.chance(0.15) ? "copy" : r < 4 ? "read" : r < 7 ? "write" : "inc";
        const offset = kind === "inc" ? COUNTER_OFFSET : kind === "read" ? rng.pick(READ_OFFSETS) : rng.pick(WORD_OFFSETS);
        const op: Op = { kind, page, offset, value: ++opId };
        if (kind === "copy") {
          op.src = { page: (page + 1 + rng.int(pages - 1)) % pages, offset: rng.pick(READ_OFFSETS) };
          multiPageOps++;
        }
        ops.push(op);
      }
      vcpus.push({ ops, next: 0, waiting: null, waitPage: -1, faultPending: false, pinned: [] });
      opsTotal += ops.length;
    }
    return vcpus;
  }
  function makeEngine(n: number, member: boolean): Engine {
    const mem = Array.from({ length: pages }, (_, p) => (n === 0 ? truth[p]!.slice() : new Uint8Array(PAGE_SIZE)));
    return {
      mem,
      views: mem.map((m) => new DataView(m.buffer)),
      access: new Uint8Array(pages).fill(n === 0 ? 2 : 0),
      revokesPending: new Uint16Array(pages),
      pins: new Uint16Array(pages),
      faults: new Map(),
      lastRevokeAt: 0,
      vcpus: member ? makeVcpus() : [],
    };
  }
  const engines: Engine[] = dsm.map((d, n) => makeEngine(n, d !== null));

  const queue = new EventQueue();
  let now = 0;
  let seq = 0;
  let events = 0;
  let messages = 0;
  let mutationsApplied = 0;
  let opsDone = 0;
  let holds = 0;
  let holdsWaited = 0;
  const linkLast = Array.from({ length: nodes }, () => new Array<number>(nodes).fill(0));
  const at = (time: number, event: Event) => queue.push({ time, seq: seq++, event });

  const delay = () => 1 + rng.int(options.maxDelay) * (rng.chance(0.05) ? 10 : 1);

  function send(from: number, to: number, original: DsmMessage): void {
    let msg = original;
    if (options.codec) msg = decode(encode(msg)) as DsmMessage;
    if (options.mutation === "skip-invalidate" && msg.type === "dsm-invalidate" && rng.chance(0.5)) {
      mutationsApplied++;
      // The target never hears of it; the new owner gets an ack as if it had.
      const forged: DsmMessage = { type: "dsm-invalidate-ack", page: msg.page, version: msg.version };
      deliverLater(to, msg.ackTo, forged);
      return;
    }
    if (options.mutation === "zero-data" && msg.type === "dsm-grant" && msg.data.form === "bytes" && rng.chance(0.5)) {
      mutationsApplied++;
      msg = { ...msg, data: { form: "zero" } };
    }
    if (options.mutation === "handoff-drops-copyset" && msg.type === "dsm-handoff" && msg.pages.some((hp) => hp.copyset.some((n) => n !== 0))) {
      mutationsApplied++;
      msg = { ...msg, pages: msg.pages.map((hp) => ({ ...hp, copyset: hp.copyset.filter((n) => n === 0) })) };
    }
    deliverLater(from, to, msg);
  }

  function deliverLater(from: number, to: number, msg: DsmMessage): void {
    messages++;
    const time = Math.max(now + delay(), linkLast[from]![to]!);
    linkLast[from]![to] = time;
    at(time, { kind: "deliver", from, to, msg });
  }

  function apply(node: number, effects: DsmEffect[]): void {
    const e = engines[node]!;
    for (const effect of effects) {
      switch (effect.type) {
        case "send":
          send(node, effect.to, effect.msg);
          break;
        case "grant": {
          const p = effect.page;
          if (e.revokesPending[p]! > 0) violate(`node ${node} granted page ${p} while a revoke is pending`);
          if (effect.data.form === "bytes") e.mem[p]!.set(effect.data.bytes);
          else if (effect.data.form === "zero") e.mem[p]!.fill(0);
          e.access[p] = effect.access === "write" ? 2 : 1;
          at(now + rng.int(options.maxDelay), { kind: "retry", node, page: p });
          break;
        }
        case "hold":
          holds++;
          if (options.mutation === "hold-forever") mutationsApplied++;
          else at(now + rng.int((options.holdWindow ?? options.maxDelay) + 1), { kind: "hold-over", node, dsm: live(node), page: effect.page });
          break;
        case "revoke": {
          const p = effect.page;
          e.revokesPending[p]!++;
          // The engine finishes revokes in the order asked (one vCPU thread), after a while.
          e.lastRevokeAt = Math.max(now + rng.int(options.maxDelay), e.lastRevokeAt);
          at(e.lastRevokeAt, {
            kind: "revoke-done",
            node,
            page: p,
            level: effect.access === "read" ? 1 : 0,
            wantBytes: effect.wantBytes,
          });
          break;
        }
      }
    }
  }

  /** The pages an operation needs at once, in ascending page order, with the access each needs. */
  const needs = (op: Op): [number, number][] =>
    op.kind === "copy"
      ? ([[op.src!.page, 1], [op.page, 2]] as [number, number][]).sort((a, b) => a[0] - b[0])
      : [[op.page, op.kind === "read" ? 1 : 2]];
  const faultAccess = (level: number): FaultAccess => (level === 1 ? "read" : "write");

  function checkSwmr(node: number, page: number, level: number, what: string): void {
    if (options.checkSwmr === false) return;
    for (let m = 0; m < nodes; m++) {
      if (m === node) continue;
      const other = engines[m]!.access[page]!;
      if (other === 2 || (level === 2 && other > 0))
        violate(`node ${node} ${what}s page ${page} while node ${m}'s engine has ${other === 2 ? "write" : "read"} access`);
    }
  }

  function readWord(node: number, page: number, offset: number): number {
    const got = engines[node]!.views[page]!.getUint32(offset, true);
    const want = truthViews[page]!.getUint32(offset, true);
    if (got !== want)
      violate(`node ${node} read ${got} at page ${page}+${offset}, the latest write in global order is ${want}`);
    return got;
  }

  function writeWord(node: number, page: number, offset: number, value: number): void {
    engines[node]!.views[page]!.setUint32(offset, value, true);
    truthViews[page]!.setUint32(offset, value, true);
  }

  /** One operation at one instant of simulated time: this is the global order the checker uses. */
  function execute(node: number, op: Op): void {
    for (const [page, level] of needs(op)) checkSwmr(node, page, level, op.kind);
    switch (op.kind) {
      case "read":
        readWord(node, op.page, op.offset);
        break;
      case "write":
        writeWord(node, op.page, op.offset, op.value);
        break;
      case "inc":
        writeWord(node, op.page, op.offset, readWord(node, op.page, op.offset) + 1);
        incs[op.page]!++;
        break;
      case "copy":
        writeWord(node, op.page, op.offset, readWord(node, op.src!.page, op.src!.offset));
        break;
    }
    opsDone++;
  }

  function fault(node: number, vcpu: number, page: number, level: number): void {
    const e = engines[node]!;
    const cpu = e.vcpus[vcpu]!;
    cpu.waitPage = page;
    cpu.faultPending = true;
    const queue = e.faults.get(page);
    if (queue) queue.push(vcpu);
    else e.faults.set(page, [vcpu]);
    apply(node, live(node).onLocalFault(page, faultAccess(level)));
  }

  function unpin(node: number, page: number): void {
    const e = engines[node]!;
    if (e.pins[page] === 0) throw new Error(`sim: unpin of unpinned page ${page} at node ${node}`);
    if (--e.pins[page]! === 0) apply(node, live(node).accessDone(page));
  }

  function unpinAll(node: number, cpu: Vcpu, abovePage = -1): void {
    const keep = cpu.pinned.filter((p) => p <= abovePage);
    for (const p of cpu.pinned) if (p > abovePage) unpin(node, p);
    cpu.pinned = keep;
  }

  /**
   * Runs the vCPU's current instruction if it can, else makes it wait. Single-page instructions
   * need no pin: they run the moment their page is there. Multi-page ones follow `discipline`.
   */
  function progress(node: number, vcpu: number): void {
    const e = engines[node]!;
    const cpu = e.vcpus[vcpu]!;
    const op = cpu.waiting ?? cpu.ops[cpu.next];
    if (!op) return;
    const list = needs(op);
    const pinning = list.length > 1 && options.discipline !== "release";
    for (const [page, level] of list) {
      const ok = e.access[page]! >= level;
      if (pinning) {
        if (cpu.pinned.includes(page)) {
          if (!ok) violate(`node ${node} lost page ${page} while a vCPU pinned it`);
          continue;
        }
        // A grant the node holds right now (pins > 0) can be shared; otherwise fault, even on an
        // accessible page: the answer is a grant, i.e. a pin.
        if (ok && e.pins[page]! > 0) {
          e.pins[page]!++;
          cpu.pinned.push(page);
          continue;
        }
      } else if (ok) continue;
      cpu.waiting = op;
      if (cpu.faultPending && cpu.waitPage === page) return; // the DSM will answer
      if (cpu.faultPending) {
        // Still owed an answer for another page (another vCPU's grant let it run meanwhile): take
        // that answer first, pinning nothing while waiting for it.
        unpinAll(node, cpu);
        return;
      }
      // Ordered pinning: never wait for a page while pinning a higher one.
      unpinAll(node, cpu, page);
      fault(node, vcpu, page, level);
      return;
    }
    execute(node, op);
    unpinAll(node, cpu);
    cpu.waiting = null;
    cpu.next++;
    at(now + rng.int(options.maxThink + 1), { kind: "issue", node, vcpu });
  }

  /** A grant answers the oldest fault on the page; every vCPU waiting on the page tries again. */
  function retry(node: number, page: number): void {
    const e = engines[node]!;
    const answered = e.faults.get(page)?.shift();
    if (answered === undefined) {
      // Node 0 adopting a leaver's page: the engine installed it; nobody faulted, so release it.
      if (change?.kind === "leave" && node === 0 && applied) {
        apply(node, live(node).accessDone(page));
        return;
      }
      throw new Error(`sim: grant of page ${page} at node ${node} answers no fault`);
    }
    if (e.faults.get(page)!.length === 0) e.faults.delete(page);
    e.vcpus[answered]!.faultPending = false;
    e.pins[page]!++; // the grant itself, until every woken vCPU has had its go
    e.vcpus.forEach((cpu, vcpu) => {
      if (cpu.waiting !== null && (cpu.waitPage === page || !cpu.faultPending)) progress(node, vcpu);
    });
    unpin(node, page);
  }

  function revokeDone(node: number, page: number, level: number, wantBytes: boolean): void {
    const e = engines[node]!;
    e.access[page] = Math.min(e.access[page]!, level);
    e.revokesPending[page]!--;
    apply(node, live(node).revoked(page, wantBytes ? e.mem[page]!.slice() : undefined));
  }

  for (const node of members)
    for (let vcpu = 0; vcpu < options.vcpusPerNode; vcpu++) at(rng.int(options.maxThink + 1), { kind: "issue", node, vcpu });

  const mirrors = Array.from({ length: nodes }, (_, n) => new PageStateMirror(n, pages));
  let snapshotSeq = 0;
  function snapshotOf(n: number, d: DsmNode): void {
    const frame = encode({
      type: "stats",
      node: n,
      seq: snapshotSeq++,
      atMs: now,
      counters: { ...emptyCounters(), ...d.counters },
      vcpus: [],
      links: [],
      pages: d.takePageChanges(),
    });
    const msg = decode(frame);
    if (msg.type !== "stats") throw new Error("stats snapshot decoded as another message");
    mirrors[msg.node]!.apply(msg.pages);
  }
  function snapshot(): void {
    dsm.forEach((d, n) => {
      if (d) snapshotOf(n, d);
    });
  }

  // ---------------------------------------------------------------- membership changes

  const coordinator = new MembershipCoordinator(nodes, [...members]);
  /** The change in progress; `applied` once the coordinator said "apply". */
  let change: MembershipChange | null = null;
  let applied = false;
  /** While a change is in progress no vCPU starts a new operation; these wait for the resume. */
  let paused = false;
  let pausedIssues: { node: number; vcpu: number }[] = [];
  /** The node leaving right now (its DsmNode still reports until the change completes). */
  let leaver: DsmNode | null = null;
  /** Nodes that left (their last DsmNode), to check they hold nothing, and the slots that ever were members. */
  const departed = new Map<number, DsmNode>();
  const everMember = new Set(members);
  let joins = 0;
  let leaves = 0;
  let rejoins = 0;
  let pagesHandedOver = 0;
  let midRunChanges = 0;
  let rounds = 0;
  let maxRounds = 0;
  let changesDone = 0;
  let lastLeft = -1;

  const roundPace = Math.max(options.maxDelay, options.holdGrants ? (options.holdWindow ?? options.maxDelay) : 0);
  const horizon = options.opsPerNode * (options.maxThink + 2 * options.maxDelay) + 1;
  for (let i = 0; i < (options.membershipChanges ?? 0); i++) at(rng.int(horizon), { kind: "change" });

  function startChange(): void {
    if (change !== null) {
      at(now + 1 + rng.int(4 * options.maxDelay + 1), { kind: "change" }); // one at a time
      return;
    }
    const free = Array.from({ length: nodes }, (_, n) => n).filter((n) => !members.has(n));
    const leavable = [...members].filter((n) => n !== 0);
    let next: MembershipChange;
    if (free.length > 0 && (leavable.length === 0 || rng.chance(0.5)))
      next = { kind: "join", node: free.includes(lastLeft) && rng.chance(0.5) ? lastLeft : rng.pick(free) };
    else next = { kind: "leave", node: rng.pick(leavable) };
    coordinator.propose(next);
    change = next;
    applied = false;
    rounds = 0;
    paused = true;
    at(now + 1, { kind: "round" });
  }

  function round(): void {
    checkDeparted();
    maxRounds = Math.max(maxRounds, ++rounds);
    if (rounds > MAX_ROUNDS) {
      violate(`livelock: the membership change ${JSON.stringify(change)} found no quiescence in ${MAX_ROUNDS} report rounds`);
      return;
    }
    const r = coordinator.beginRound();
    // Each node answers at its own instant: a round is not an atomic cut.
    for (const node of r.ask) at(now + rng.int(options.maxDelay + 1), { kind: "report", node, round: r.round });
  }

  function report(node: number, roundNo: number): void {
    const d = dsm[node] ?? (leaver?.self === node ? leaver : null);
    if (!d) throw new Error(`sim: report from node ${node}, which is not running`);
    const decision = coordinator.report(roundNo, d.quiescenceReport());
    if (decision === null) return;
    if (decision.kind === "again") {
      // After a violation a drain may never end (an injected bug): stop asking, let the run end.
      // Rounds are paced by the slowest thing a drain waits for: a message, or a hold window.
      if (violations.length === 0) at(now + 1 + rng.int(roundPace), { kind: "round" });
    }
    else if (decision.kind === "apply") {
      applyChange(decision.change);
      at(now + 1, { kind: "round" });
    } else finishChange(decision.change, decision.members);
  }

  /** At global quiescence: every node learns of the change at once (the runtime: before any engine resumes). */
  function applyChange(c: MembershipChange): void {
    applied = true;
    if (opsDone < opsTotal) midRunChanges++;
    const k = c.node;
    if (c.kind === "join") {
      for (const n of members) apply(n, live(n).addMember(k));
      if (everMember.has(k)) rejoins++;
      everMember.add(k);
      members.add(k);
      const d = newNode(k, true);
      dsm[k] = d;
      everyDsm.push(d);
      engines[k] = makeEngine(k, true);
      joins++;
      return;
    }
    const d = live(k);
    const e = engines[k]!;
    let skip = -1;
    if (options.mutation === "skip-forget") {
      const others = [...members].filter((n) => n !== 0 && n !== k);
      if (others.length > 0) {
        skip = rng.pick(others);
        mutationsApplied++;
      }
    }
    for (const n of members) if (n !== k && n !== skip) apply(n, live(n).removeMember(k));
    for (let p = 0; p < pages; p++) if (d.inspect(p).owner) pagesHandedOver++;
    apply(k, d.leave((p) => e.mem[p]!.slice()));
    // Its vCPUs stop for good: their remaining operations will never run.
    for (const cpu of e.vcpus) {
      if (cpu.waiting !== null || cpu.pinned.length > 0) violate(`node ${k} leaves in the middle of an operation`);
      opsTotal -= cpu.ops.length - cpu.next;
    }
    if (options.snapshotEvery) snapshotOf(k, d);
    members.delete(k);
    dsm[k] = null;
    leaver = d;
    engines[k] = makeEngine(k, false);
    engines[k]!.access.fill(0);
    leaves++;
    lastLeft = k;
  }

  function finishChange(c: MembershipChange, after: number[]): void {
    if (after.join() !== [...members].sort((a, b) => a - b).join())
      violate(`the coordinator's members [${after.join()}] differ from the simulation's [${[...members].join()}]`);
    if (c.kind === "leave") {
      departed.set(c.node, leaver!);
      leaver = null;
      checkForgotten(c.node);
    }
    change = null;
    applied = false;
    paused = false;
    changesDone++;
    const resume = pausedIssues;
    pausedIssues = [];
    for (const { node, vcpu } of resume) if (members.has(node)) at(now + rng.int(options.maxThink + 1), { kind: "issue", node, vcpu });
    if (c.kind === "join")
      for (let vcpu = 0; vcpu < options.vcpusPerNode; vcpu++) at(now + rng.int(options.maxThink + 1), { kind: "issue", node: c.node, vcpu });
  }

  /** After node k left: no live node refers to it, and it holds nothing. */
  function checkForgotten(k: number): void {
    for (const n of members) {
      const d = live(n);
      if (d.isMember(k)) violate(`node ${n} still counts node ${k} as a member after it left`);
      for (let p = 0; p < pages; p++) {
        const v = d.inspect(p);
        if (v.copyset.includes(k)) violate(`page ${p}: node ${n}'s copyset [${v.copyset.join()}] still holds node ${k}, which left`);
        if (v.manager?.owner === k) violate(`page ${p}: manager ${n} still believes node ${k}, which left, owns it`);
      }
    }
  }

  /** Departed nodes hold no page, ever (the count must never grow from 0). */
  function checkDeparted(): void {
    for (const [k, d] of departed)
      for (let p = 0; p < pages; p++) {
        const v = d.inspect(p);
        if (v.owner || v.access !== "none" || v.copyset.length > 0) violate(`node ${k} left but still holds page ${p} (${v.state})`);
      }
  }

  const maxEvents = () => 100 * opId + 10_000 + 3_000 * changesDone;
  try {
    while (queue.size > 0) {
      // Healthy runs take at most ~10 events per operation (measured over 10,000 seeds), plus the
      // report rounds of membership changes.
      if (++events > maxEvents()) {
        violate(`livelock: more than ${maxEvents()} events for ${opsTotal} operations`);
        break;
      }
      const { time, event } = queue.pop()!;
      now = time;
      switch (event.kind) {
        case "deliver": {
          const target = dsm[event.to];
          if (!target) {
            violate(`${event.msg.type} from node ${event.from} reached node ${event.to}, which is not a member`);
            break;
          }
          apply(event.to, target.onMessage(event.from, event.msg));
          break;
        }
        case "issue":
          if (paused) pausedIssues.push({ node: event.node, vcpu: event.vcpu });
          else if (members.has(event.node)) progress(event.node, event.vcpu);
          break;
        case "retry":
          retry(event.node, event.page);
          break;
        case "revoke-done":
          revokeDone(event.node, event.page, event.level, event.wantBytes);
          break;
        case "hold-over":
          // A node that left ended its windows with it (leave(); holdOver then does nothing).
          if (event.dsm.inspect(event.page).heldForward) holdsWaited++;
          if (dsm[event.node] === event.dsm) apply(event.node, event.dsm.holdOver(event.page));
          else event.dsm.holdOver(event.page);
          break;
        case "change":
          startChange();
          break;
        case "round":
          round();
          break;
        case "report":
          report(event.node, event.round);
          break;
      }
      if (violations.length >= 20) break;
      if (options.snapshotEvery && events % options.snapshotEvery === 0) snapshot();
    }
  } catch (err) {
    violate(`exception: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }

  if (violations.length === 0 && change !== null) violate(`the membership change ${JSON.stringify(change)} never completed`);
  if (violations.length === 0) checkFinalState();
  if (violations.length === 0 && options.snapshotEvery) {
    snapshot();
    for (let n = 0; n < nodes; n++)
      for (let p = 0; p < pages; p++) {
        const state = dsm[n]?.pageState(p) ?? "invalid";
        if (mirrors[n]!.state(p) !== state)
          violate(`page ${p}: the viewer's mirror of node ${n} says ${mirrors[n]!.state(p)}, the node ${state}`);
      }
  }

  function checkFinalState(): void {
    if (opsDone !== opsTotal) {
      for (const n of members)
        for (const cpu of engines[n]!.vcpus) {
          const w = cpu.waiting;
          if (w) violate(`deadlock: node ${n} still waits on page ${w.page} (${JSON.stringify(live(n).inspect(w.page))})`);
        }
      violate(`deadlock: ${opsDone} of ${opsTotal} operations completed`);
      return;
    }
    checkDeparted();
    const liveNodes = [...members].sort((a, b) => a - b);
    for (const n of liveNodes) {
      if (!live(n).isQuiescent()) violate(`node ${n} is not quiescent at the end`);
      if (engines[n]!.pins.some((c) => c !== 0) || engines[n]!.faults.size > 0)
        violate(`node ${n} ends with pins or unanswered faults`);
    }
    for (let n = 0; n < nodes; n++)
      if (!members.has(n) && engines[n]!.access.some((a) => a !== 0)) violate(`node ${n} is no member but its engine maps pages`);
    for (let p = 0; p < pages; p++) {
      const views = new Map(liveNodes.map((n) => [n, live(n).inspect(p)]));
      const owners = liveNodes.filter((n) => views.get(n)!.owner);
      if (owners.length !== 1) {
        violate(`page ${p} has owners [${owners.join(", ")}], expected exactly one`);
        continue;
      }
      const owner = owners[0]!;
      const ov = views.get(owner)!;
      const manager = views.get(live(0).managerOf(p))!.manager;
      if (manager?.owner !== owner) violate(`page ${p}: manager believes ${manager?.owner} owns it, owner is ${owner}`);
      const holders = liveNodes.filter((n) => n !== owner && views.get(n)!.access !== "none");
      if (holders.join() !== ov.copyset.join())
        violate(`page ${p}: copyset [${ov.copyset.join()}] but copies at [${holders.join()}]`);
      if (ov.access === "write" && holders.length > 0) violate(`page ${p}: modified at ${owner} with other copies`);
      for (const n of liveNodes) {
        const v = views.get(n)!;
        const level = v.access === "write" ? 2 : v.access === "read" ? 1 : 0;
        if (engines[n]!.access[p] !== level)
          violate(`page ${p}: node ${n}'s engine has access ${engines[n]!.access[p]}, its DSM says ${v.access}`);
        if (level > 0) {
          if (v.version !== ov.version) violate(`page ${p}: node ${n} holds version ${v.version}, owner ${ov.version}`);
          if (!equalBytes(engines[n]!.mem[p]!, truth[p]!)) violate(`page ${p}: node ${n}'s copy differs from the truth`);
        }
      }
      // The preload never touches COUNTER_OFFSET and plain writes never do, so it counts increments.
      const counter = engines[owner]!.views[p]!.getUint32(COUNTER_OFFSET, true);
      if (counter !== incs[p]!) violate(`page ${p}: counter is ${counter} after ${incs[p]} atomic increments`);
    }
  }

  const counters = zeroDsmCounters();
  for (const d of everyDsm)
    for (const key of Object.keys(counters) as (keyof DsmCounters)[]) counters[key] += d.counters[key];
  return {
    options,
    violations,
    opsDone,
    opsTotal,
    events,
    messages,
    mutationsApplied,
    multiPageOps,
    counters,
    joins,
    leaves,
    rejoins,
    pagesHandedOver,
    midRunChanges,
    maxRounds,
    holds,
    holdsWaited,
  };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
