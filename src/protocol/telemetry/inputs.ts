// What the live view consumes and what it emits. The view is fed by one typed stream (a
// `ViewSource`); the machine (or a recording, in tests and the lab page) pushes `ViewInput`s into
// it. Everything here comes from other nodes or other threads, so `checkViewInput` validates it.

import type { ClusterConfig, InterruptKind, ReportEvent, ReportIpiCount, ReportPageMove, StatsSnapshot } from "../messages.ts";
import { INTERRUPT_KINDS, STAT_COUNTERS, VCPU_RUN_STATES } from "../messages.ts";
import { PAGE_STATES } from "../types.ts";

/** Kinds of interrupt in the IPI matrix: the APIC delivery modes, plus IOAPIC-routed IRQs. */
export type IpiKind = InterruptKind;
export const IPI_KINDS: readonly IpiKind[] = INTERRUPT_KINDS;

/** Cumulative count of interrupts `src` sent to `dest`, as counted at the sending node. */
export type IpiCount = ReportIpiCount;

/**
 * One DSM, interrupt or forwarded-I/O event for the trace (the protocol's ReportEvent: nodes
 * send them in their view reports). Times are in the viewer's clock (ms, e.g.
 * `performance.now()` of this tab); whoever forwards events from another node aligns its clock
 * first (machine-glue.ts moves the nodes' wall-clock times to this page's clock).
 */
export type TraceEvent = ReportEvent;

/** `count` grants of `page` a node served to node `to` (bytes, zero or "current"). */
export type PageMove = ReportPageMove;

export type ViewInput =
  /** The machine's shape; (re)starts the view's model. */
  | { kind: "config"; config: ClusterConfig }
  /** One node's statistics snapshot; `receivedMs` is when this tab got it (viewer's clock). */
  | { kind: "stats"; snapshot: StatsSnapshot; receivedMs: number }
  /** One node's cumulative IPI counts (replace that node's previous ones). */
  | { kind: "ipi-counts"; node: number; counts: IpiCount[] }
  /**
   * Optional, for exact hot pages: the pages `node` sent since its previous report (numbered by
   * `seq`). Without these the view counts moves from the page-state deltas, which see at most one
   * move per page and node per snapshot (a page bouncing faster than snapshots are sent is undercounted).
   */
  | { kind: "page-moves"; node: number; seq: number; receivedMs: number; moves: PageMove[] }
  /** DSM and interrupt events; sent only while a trace is recorded (see the `trace` event). */
  | { kind: "events"; events: TraceEvent[] }
  /**
   * An elastic VM's vCPUs: for each possible vCPU (node v hosts vCPU v) the tab running its node,
   * or null while it is offline (no node); and the join or leave under way ("" when none), e.g.
   * "tab 3 joins with vCPU 2". Sent whenever tab 0 says it changed; a VM that never sends it has
   * every node of its config online.
   */
  | { kind: "hosts"; hosts: (number | null)[]; changing: string; receivedMs: number };

/** What the view asks of the machine. */
export type ViewEvent =
  /** Added one-way delay on every link, 0..MAX_ADDED_DELAY_MS; "off" is 0 (each VM node delays its own sends). */
  | { kind: "set-link-delay"; ms: number }
  /** Start or stop forwarding `events` inputs (they cost something, so only while a trace records). */
  | { kind: "trace"; recording: boolean }
  /** A trace file was produced (the panel also downloads it). */
  | { kind: "trace-exported"; fileName: string; events: number };

/** A stream of inputs; returns a function that unsubscribes. */
export interface ViewSource {
  subscribe(listener: (input: ViewInput) => void): () => void;
}

/** A ViewSource one can push into (the lead's glue and the tests use it). */
export class ViewFeed implements ViewSource {
  private readonly listeners = new Set<(input: ViewInput) => void>();
  subscribe(listener: (input: ViewInput) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  push(input: ViewInput): void {
    for (const l of this.listeners) l(input);
  }
}

export class ViewInputError extends Error {
  override name = "ViewInputError";
}

const isNat = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function need(ok: boolean, what: string): void {
  if (!ok) throw new ViewInputError(what);
}

/** Checks a snapshot's shape (decoded frames are already valid; this guards hand-made ones). */
export function checkSnapshot(s: StatsSnapshot): void {
  need(s !== null && typeof s === "object" && s.type === "stats", "stats input holds no stats snapshot");
  need(isNat(s.node), `snapshot node ${String(s.node)} is not a node id`);
  need(isNat(s.seq), `snapshot seq ${String(s.seq)} from node ${s.node} is not a natural number`);
  need(isTime(s.atMs), `snapshot atMs from node ${s.node} is not a finite number`);
  need(s.counters !== null && typeof s.counters === "object", `snapshot from node ${s.node} has no counters`);
  for (const c of STAT_COUNTERS) need(isNat(s.counters[c]), `snapshot from node ${s.node}: counter ${c} is ${String(s.counters[c])}`);
  need(Array.isArray(s.vcpus) && Array.isArray(s.links) && Array.isArray(s.pages), `snapshot from node ${s.node} lacks vcpus/links/pages arrays`);
  for (const v of s.vcpus) {
    need(isNat(v.vcpu), `snapshot from node ${s.node}: vCPU id ${String(v.vcpu)}`);
    need(VCPU_RUN_STATES.includes(v.state), `snapshot from node ${s.node}: vCPU ${v.vcpu} state ${String(v.state)}`);
    need(isNat(v.instructions), `snapshot from node ${s.node}: vCPU ${v.vcpu} instructions ${String(v.instructions)}`);
  }
  for (const l of s.links) need(isNat(l.peer) && isNat(l.rttUs), `snapshot from node ${s.node}: bad link entry ${JSON.stringify(l)}`);
  let end = 0;
  for (const r of s.pages) {
    need(isNat(r.first) && isNat(r.count) && r.count > 0 && PAGE_STATES.includes(r.state), `snapshot from node ${s.node}: bad page run ${JSON.stringify(r)}`);
    need(r.first >= end, `snapshot from node ${s.node}: page runs overlap or are unsorted at page ${r.first}`);
    end = r.first + r.count;
  }
}

export function checkConfig(c: ClusterConfig): void {
  need(c !== null && typeof c === "object" && c.type === "config", "config input holds no cluster config");
  need(isNat(c.nodes) && c.nodes >= 1 && c.nodes <= 255, `config: nodes is ${String(c.nodes)}, expected 1..255`);
  need(isNat(c.memoryPages) && c.memoryPages >= 1, `config: memoryPages is ${String(c.memoryPages)}`);
  need(Array.isArray(c.vcpuHome) && c.vcpuHome.every((n) => isNat(n) && n < c.nodes), "config: vcpuHome must list a node id < nodes per vCPU");
}

export function checkTraceEvent(e: TraceEvent): void {
  const t = e.type;
  switch (t) {
    case "fault":
      need(isNat(e.node) && isNat(e.vcpu) && isNat(e.page) && (e.access === "read" || e.access === "write"), `bad fault event ${JSON.stringify(e)}`);
      need(isTime(e.startMs) && isTime(e.endMs) && e.endMs >= e.startMs, `fault event ends before it starts: ${JSON.stringify(e)}`);
      return;
    case "page-sent":
      need(isNat(e.node) && isNat(e.to) && isNat(e.page) && ["bytes", "zero", "current"].includes(e.form) && isTime(e.atMs), `bad page-sent event ${JSON.stringify(e)}`);
      return;
    case "invalidate":
      need(isNat(e.node) && isNat(e.page) && isNat(e.by) && isTime(e.atMs), `bad invalidate event ${JSON.stringify(e)}`);
      return;
    case "ipi":
      need(isNat(e.node) && isNat(e.src) && isNat(e.dest) && IPI_KINDS.includes(e.kind) && isTime(e.atMs), `bad ipi event ${JSON.stringify(e)}`);
      return;
    case "io":
      need(isNat(e.node) && isNat(e.vcpu) && isNat(e.addr) && ["port-read", "port-write", "mmio-read", "mmio-write"].includes(e.op), `bad io event ${JSON.stringify(e)}`);
      need(isTime(e.startMs) && isTime(e.endMs) && e.endMs >= e.startMs, `io event ends before it starts: ${JSON.stringify(e)}`);
      return;
    default:
      throw new ViewInputError(`unknown trace event type ${JSON.stringify((e as { type?: unknown }).type)}`);
  }
}

/** Validates any input; throws ViewInputError naming the problem. */
export function checkViewInput(input: ViewInput): void {
  need(input !== null && typeof input === "object", "view input is not an object");
  switch (input.kind) {
    case "config":
      return checkConfig(input.config);
    case "stats":
      need(isTime(input.receivedMs), "stats input: receivedMs is not a finite number");
      return checkSnapshot(input.snapshot);
    case "ipi-counts":
      need(isNat(input.node) && Array.isArray(input.counts), "ipi-counts input: bad node or counts");
      for (const c of input.counts)
        need(isNat(c.src) && isNat(c.dest) && IPI_KINDS.includes(c.kind) && isNat(c.count), `ipi-counts from node ${input.node}: bad entry ${JSON.stringify(c)}`);
      return;
    case "page-moves":
      need(isNat(input.node) && isNat(input.seq) && isTime(input.receivedMs) && Array.isArray(input.moves), "page-moves input: bad node, seq, receivedMs or moves");
      for (const m of input.moves)
        need(isNat(m.page) && isNat(m.to) && isNat(m.count) && m.count > 0, `page-moves from node ${input.node}: bad entry ${JSON.stringify(m)}`);
      return;
    case "events":
      need(Array.isArray(input.events), "events input: events is not an array");
      for (const e of input.events) checkTraceEvent(e);
      return;
    case "hosts":
      need(Array.isArray(input.hosts) && input.hosts.length >= 1 && input.hosts.length <= 255, "hosts input: hosts is not an array of 1..255 entries");
      input.hosts.forEach((t, v) => need(t === null || isNat(t), `hosts input: vCPU ${v}'s tab is ${JSON.stringify(t)}, expected a tab number or null`));
      need(typeof input.changing === "string", "hosts input: changing is not a string");
      need(isTime(input.receivedMs), "hosts input: receivedMs is not a finite number");
      return;
    default:
      throw new ViewInputError(`unknown view input kind ${JSON.stringify((input as { kind?: unknown }).kind)}`);
  }
}
