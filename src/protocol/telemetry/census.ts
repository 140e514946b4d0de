// The fault census (issue 16, "Measure first"): what the nodes' trace events say about a window of
// a VM's life. Pure: events in (the `fault`, `page-sent`, `invalidate` and `ipi` ReportEvents the
// nodes record while a trace records, view-recorder.ts), tables out; no clock, no I/O.
//
// Each fault event (a vCPU's DSM fault, from the fault to its grant) is matched with the messages
// that served it, recorded at the other nodes: the `page-sent` (a dsm-grant) whose `to` is the
// faulting node, and the `invalidate`s whose `by` is the faulting node, for the same page, stamped
// within the fault's time span (every node stamps wall-clock ms, wall-clock.ts; `slackMs` allows
// for the threads' clocks and the stamping points). What a fault cost follows from what it got:
//
//   bytes    a grant with the page's 4 KiB (a read: a copy, and the ownership moves to the reader
//            as `readTakesOwnership` has it, the old owner keeping a copy; a write: the page moves)
//   zero     a grant of an all-zero page (no bytes on the wire)
//   current  a grant without bytes: the requester's copy was current (access and ownership move)
//   upgrade  no grant, invalidations only: the owner held the page shared and took the other copies
//            away to write (no manager trip)
//   local    no message matched: the fault raced a grant already held, or an owner upgraded with no
//            other copy, or (seen in the first census: 3-8% of faults while the DSM's counters said
//            every fault was remote) its grant was stamped further than `slackMs` outside its span
//            by the other thread's clock; compare with the DSM counters (readFaults + writeFaults
//            against requestsSent + upgrades) before reading `local` as local
//
// The events carry no guest context (EIP, CPL, interrupt or idle), no instruction-fetch and no
// page-walk flag: a fault is a read or a write of a page, nothing more. See the census bench
// (bench/metrics/census.ts) for what it adds from the guest's own counters.

import type { InterruptKind, ReportEvent } from "../messages.ts";
import type { FaultAccess } from "../types.ts";

export type CensusOutcome = "bytes" | "zero" | "current" | "upgrade" | "local";
export const CENSUS_OUTCOMES: readonly CensusOutcome[] = ["bytes", "zero", "current", "upgrade", "local"];

/** Remote outcomes: the fault waited for at least one message from another node. */
export const isRemote = (o: CensusOutcome): boolean => o !== "local";

export interface CensusOptions {
  /** The window, wall-clock ms (the events' clock): faults that start in [startMs, endMs) count. */
  startMs: number;
  endMs: number;
  /** How far outside a fault's span a serving message may be stamped and still match it (default 2 ms). */
  slackMs?: number;
  /** A page's name in the tables (default "page 0x…"): the kernel symbols on it, say. */
  name?: (page: number) => string;
  /** What pages are grouped by in the causes table (default: `name`). */
  group?: (page: number) => string;
}

/** One fault in the window with what served it. */
export interface CensusFault {
  node: number;
  vcpu: number;
  page: number;
  access: FaultAccess;
  outcome: CensusOutcome;
  /** Copies invalidated for it (invalidate events matched). */
  invalidations: number;
  startMs: number;
  ms: number;
}

export interface CensusPageRow {
  page: number;
  name: string;
  faults: number;
  remote: number;
  reads: number;
  writes: number;
  /** Faults per vCPU (index: vCPU). */
  byVcpu: number[];
  outcomes: Record<CensusOutcome, number>;
  invalidations: number;
  /** Faults on this page by another vCPU than the page's previous fault in the window: the page bouncing. */
  bounces: number;
  /** Time its faults took, summed over vCPUs (ms). */
  blockedMs: number;
}

/** One cause: a group of pages (a symbol), an access and an outcome. */
export interface CensusCauseRow {
  group: string;
  access: FaultAccess;
  outcome: CensusOutcome;
  faults: number;
  pages: number;
  blockedMs: number;
}

export interface CensusInterruptRow {
  kind: InterruptKind;
  vector: number | null;
  src: number;
  dest: number;
  count: number;
}

export interface Census {
  seconds: number;
  /** Every fault event in the window (the agent's fault count: remote or not). */
  faults: number;
  /** Faults that waited for another node (outcome not `local`). */
  remote: number;
  faultsPerSecond: number;
  remotePerSecond: number;
  byAccess: Record<FaultAccess, number>;
  byOutcome: Record<CensusOutcome, number>;
  /** Remote faults by access and outcome, e.g. "read bytes". */
  byAccessOutcome: Record<string, number>;
  /** Faults per vCPU (index: vCPU). */
  byVcpu: number[];
  /** Distinct pages faulted. */
  pages: number;
  /** Sum of the faults' durations (ms, over all vCPUs). */
  blockedMs: number;
  /** Mean duration of a remote fault (µs), and of each outcome. */
  meanRemoteUs: number;
  meanUsByOutcome: Record<CensusOutcome, number>;
  /** Faults on a page by another vCPU than its previous fault: bounces. */
  bounces: number;
  invalidations: number;
  /** Serving messages in the window matched to no fault (a grant or invalidation whose fault is outside it, or clocks further apart than slackMs). */
  unmatched: { grants: number; invalidations: number };
  /** Faults matched only with the slack (not within their own span). */
  matchedWithSlack: number;
  /** Every page faulted, most faults first. */
  pageRows: CensusPageRow[];
  /** Every (group, access, outcome), most faults first. */
  causes: CensusCauseRow[];
  /** Interrupts sent between vCPUs and IRQs (ipi events) in the window, most first. */
  interrupts: CensusInterruptRow[];
  /** The matched faults, in start order. */
  list: CensusFault[];
}

type Fault = Extract<ReportEvent, { type: "fault" }>;
type Sent = Extract<ReportEvent, { type: "page-sent" }>;
type Inval = Extract<ReportEvent, { type: "invalidate" }>;

const hexPage = (page: number) => `page 0x${page.toString(16)}`;
const zeroOutcomes = (): Record<CensusOutcome, number> => ({ bytes: 0, zero: 0, current: 0, upgrade: 0, local: 0 });

/** Messages of one (node, page), sorted by time, with a used flag each. */
class Pool<T extends { atMs: number }> {
  private readonly lists = new Map<string, { items: T[]; used: boolean[] }>();
  add(key: string, e: T): void {
    let l = this.lists.get(key);
    if (!l) this.lists.set(key, (l = { items: [], used: [] }));
    l.items.push(e);
    l.used.push(false);
  }
  sort(): void {
    for (const l of this.lists.values()) {
      const order = l.items.map((e, i) => [e.atMs, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      l.items = order.map(([, i]) => l.items[i]!);
    }
  }
  /** Unused items of `key` stamped in [from, to], nearest to `near` first; marks the taken ones used. */
  take(key: string, from: number, to: number, near: number, max: number, accept: (e: T, taken: T[]) => boolean = () => true): T[] {
    const l = this.lists.get(key);
    if (!l) return [];
    const cands: number[] = [];
    for (let i = 0; i < l.items.length; i++) {
      const t = l.items[i]!.atMs;
      if (t > to) break;
      if (t >= from && !l.used[i]) cands.push(i);
    }
    cands.sort((a, b) => Math.abs(l.items[a]!.atMs - near) - Math.abs(l.items[b]!.atMs - near) || a - b);
    const taken: T[] = [];
    for (const i of cands) {
      if (taken.length >= max) break;
      if (!accept(l.items[i]!, taken)) continue;
      l.used[i] = true;
      taken.push(l.items[i]!);
    }
    return taken;
  }
  *all(): Iterable<T> {
    for (const l of this.lists.values()) yield* l.items;
  }
  /** Moves every item's stamp back by `by(item)` (a copy; the caller's events stay as they are). */
  shift(by: (e: T) => number): void {
    for (const l of this.lists.values()) l.items = l.items.map((e) => ({ ...e, atMs: e.atMs - by(e) }));
  }
  unused(from: number, to: number): number {
    let n = 0;
    for (const l of this.lists.values()) l.items.forEach((e, i) => (n += !l.used[i] && e.atMs >= from && e.atMs < to ? 1 : 0));
    return n;
  }
}

/**
 * Per "sender>faulting node", the median of (message stamp - middle of the nearest fault of that
 * node and page within 20 ms), when at least 20 such pairs exist: how far the sender's clock reads
 * ahead of the faulting node's around a fault.
 */
function clockOffsets(faults: readonly Fault[], messages: readonly (readonly [number, number, { page: number; atMs: number }])[]): Map<string, number> {
  const mids = new Map<string, number[]>();
  for (const f of faults) {
    const k = `${f.node}:${f.page}`;
    let l = mids.get(k);
    if (!l) mids.set(k, (l = []));
    l.push((f.startMs + f.endMs) / 2); // faults are sorted by start, so these nearly are too
  }
  for (const l of mids.values()) l.sort((a, b) => a - b);
  const deltas = new Map<string, number[]>();
  for (const [from, to, e] of messages) {
    const l = mids.get(`${to}:${e.page}`);
    if (!l) continue;
    let lo = 0;
    let hi = l.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (l[m]! < e.atMs) lo = m + 1;
      else hi = m;
    }
    let best = Infinity;
    for (const i of [lo - 1, lo]) if (i >= 0 && i < l.length && Math.abs(e.atMs - l[i]!) < Math.abs(best)) best = e.atMs - l[i]!;
    if (Math.abs(best) > 20) continue;
    const k = `${from}>${to}`;
    let d = deltas.get(k);
    if (!d) deltas.set(k, (d = []));
    d.push(best);
  }
  const out = new Map<string, number>();
  for (const [k, d] of deltas) {
    if (d.length < 20) continue;
    d.sort((a, b) => a - b);
    out.set(k, d[d.length >> 1]!);
  }
  return out;
}

/** The census of the faults that start in [startMs, endMs), from every node's events (any order). */
export function faultCensus(events: readonly ReportEvent[], opts: CensusOptions): Census {
  const { startMs, endMs } = opts;
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs) || endMs <= startMs) throw new RangeError(`census window [${startMs}, ${endMs}) is empty or not finite`);
  const slack = opts.slackMs ?? 2;
  if (!(slack >= 0)) throw new RangeError(`slackMs must be >= 0, got ${slack}`);
  const name = opts.name ?? hexPage;
  const group = opts.group ?? name;

  const faults: Fault[] = [];
  const grants = new Pool<Sent>();
  const invals = new Pool<Inval>();
  const irqs = new Map<string, CensusInterruptRow>();
  for (const e of events) {
    switch (e.type) {
      case "fault":
        if (e.startMs >= startMs && e.startMs < endMs) faults.push(e);
        break;
      case "page-sent":
        if (e.atMs >= startMs - slack && e.atMs < endMs + slack) grants.add(`${e.to}:${e.page}`, e);
        break;
      case "invalidate":
        if (e.atMs >= startMs - slack && e.atMs < endMs + slack) invals.add(`${e.by}:${e.page}`, e);
        break;
      case "ipi":
        if (e.atMs >= startMs && e.atMs < endMs) {
          const vector = e.vector ?? null;
          const key = `${e.kind}:${vector}:${e.src}:${e.dest}`;
          const row = irqs.get(key);
          if (row) row.count++;
          else irqs.set(key, { kind: e.kind, vector, src: e.src, dest: e.dest, count: 1 });
        }
        break;
      default:
        break;
    }
  }
  faults.sort((a, b) => a.startMs - b.startMs || a.node - b.node);
  grants.sort();
  invals.sort();
  // The threads' clocks: each sender's stamps are moved by the median offset, per (sender, faulting
  // node), of its messages from the middle of the nearest fault they could serve.
  const messages: [number, number, { page: number; atMs: number }][] = [];
  for (const e of grants.all()) messages.push([e.node, e.to, e]);
  for (const e of invals.all()) messages.push([e.node, e.by, e]);
  const offsets = clockOffsets(faults, messages);
  if (offsets.size) {
    grants.shift((e) => offsets.get(`${e.node}>${e.to}`) ?? 0);
    invals.shift((e) => offsets.get(`${e.node}>${e.by}`) ?? 0);
    grants.sort();
    invals.sort();
  }

  // Pass 1: messages within each fault's own span; pass 2: what is left, within the slack, for the
  // faults that found nothing (a later fault of the same page must not lose its own grant to an
  // earlier one that had none, so the exact pass runs over all faults first).
  const got: { grant: Sent | null; invals: Inval[]; slack: boolean }[] = faults.map(() => ({ grant: null, invals: [], slack: false }));
  const distinctNode = (e: Inval, taken: Inval[]) => taken.every((t) => t.node !== e.node);
  const mid = (f: Fault) => (f.startMs + f.endMs) / 2;
  faults.forEach((f, i) => {
    const g = got[i]!;
    g.grant = grants.take(`${f.node}:${f.page}`, f.startMs, f.endMs, mid(f), 1)[0] ?? null;
    g.invals = invals.take(`${f.node}:${f.page}`, f.startMs, f.endMs, mid(f), Infinity, distinctNode);
  });
  faults.forEach((f, i) => {
    const g = got[i]!;
    if (g.grant || g.invals.length) return;
    g.grant = grants.take(`${f.node}:${f.page}`, f.startMs - slack, f.endMs + slack, mid(f), 1)[0] ?? null;
    g.invals = invals.take(`${f.node}:${f.page}`, f.startMs - slack, f.endMs + slack, mid(f), Infinity, distinctNode);
    g.slack = g.grant !== null || g.invals.length > 0;
  });

  const list: CensusFault[] = faults.map((f, i) => {
    const g = got[i]!;
    const outcome: CensusOutcome = g.grant ? g.grant.form : g.invals.length ? "upgrade" : "local";
    return { node: f.node, vcpu: f.vcpu, page: f.page, access: f.access, outcome, invalidations: g.invals.length, startMs: f.startMs, ms: f.endMs - f.startMs };
  });

  const seconds = (endMs - startMs) / 1000;
  const byAccess: Record<FaultAccess, number> = { read: 0, write: 0 };
  const byOutcome = zeroOutcomes();
  const msByOutcome = zeroOutcomes();
  const byAccessOutcome: Record<string, number> = {};
  const byVcpu: number[] = [];
  const rows = new Map<number, CensusPageRow & { last: number }>();
  const causes = new Map<string, CensusCauseRow & { pageSet: Set<number> }>();
  let blockedMs = 0;
  let remoteMs = 0;
  let bounces = 0;
  let invalidations = 0;
  for (const f of list) {
    byAccess[f.access]++;
    byOutcome[f.outcome]++;
    msByOutcome[f.outcome] += f.ms;
    if (isRemote(f.outcome)) {
      const k = `${f.access} ${f.outcome}`;
      byAccessOutcome[k] = (byAccessOutcome[k] ?? 0) + 1;
      remoteMs += f.ms;
    }
    byVcpu[f.vcpu] = (byVcpu[f.vcpu] ?? 0) + 1;
    blockedMs += f.ms;
    invalidations += f.invalidations;
    let row = rows.get(f.page);
    if (!row) {
      row = { page: f.page, name: name(f.page), faults: 0, remote: 0, reads: 0, writes: 0, byVcpu: [], outcomes: zeroOutcomes(), invalidations: 0, bounces: 0, blockedMs: 0, last: -1 };
      rows.set(f.page, row);
    }
    row.faults++;
    if (isRemote(f.outcome)) row.remote++;
    if (f.access === "read") row.reads++;
    else row.writes++;
    row.byVcpu[f.vcpu] = (row.byVcpu[f.vcpu] ?? 0) + 1;
    row.outcomes[f.outcome]++;
    row.invalidations += f.invalidations;
    row.blockedMs += f.ms;
    if (row.last >= 0 && row.last !== f.vcpu) (row.bounces++, bounces++);
    row.last = f.vcpu;
    const gk = group(f.page);
    const ck = `${gk}\u0000${f.access}\u0000${f.outcome}`;
    let c = causes.get(ck);
    if (!c) causes.set(ck, (c = { group: gk, access: f.access, outcome: f.outcome, faults: 0, pages: 0, blockedMs: 0, pageSet: new Set() }));
    c.faults++;
    c.blockedMs += f.ms;
    c.pageSet.add(f.page);
  }
  for (let v = 0; v < byVcpu.length; v++) byVcpu[v] ??= 0;
  const remote = list.length - byOutcome.local;
  const meanUsByOutcome = zeroOutcomes();
  for (const o of CENSUS_OUTCOMES) meanUsByOutcome[o] = byOutcome[o] ? (msByOutcome[o] * 1000) / byOutcome[o] : 0;
  const pageRows = [...rows.values()]
    .map(({ last: _last, ...r }) => ({ ...r, byVcpu: Array.from({ length: Math.max(byVcpu.length, r.byVcpu.length) }, (_, v) => r.byVcpu[v] ?? 0) }))
    .sort((a, b) => b.faults - a.faults || a.page - b.page);
  const causeRows = [...causes.values()]
    .map(({ pageSet, ...c }) => ({ ...c, pages: pageSet.size }))
    .sort((a, b) => b.faults - a.faults || a.group.localeCompare(b.group) || a.access.localeCompare(b.access) || a.outcome.localeCompare(b.outcome));
  return {
    seconds,
    faults: list.length,
    remote,
    faultsPerSecond: list.length / seconds,
    remotePerSecond: remote / seconds,
    byAccess,
    byOutcome,
    byAccessOutcome,
    byVcpu,
    pages: rows.size,
    blockedMs,
    meanRemoteUs: remote ? (remoteMs * 1000) / remote : 0,
    meanUsByOutcome,
    bounces,
    invalidations,
    unmatched: { grants: grants.unused(startMs, endMs), invalidations: invals.unused(startMs, endMs) },
    matchedWithSlack: got.filter((g) => g.slack).length,
    pageRows,
    causes: causeRows,
    interrupts: [...irqs.values()].sort((a, b) => b.count - a.count || a.src - b.src || a.dest - b.dest),
    list,
  };
}

/** What an outcome means for an access, in words (for the tables). */
export function outcomeLabel(access: FaultAccess, outcome: CensusOutcome): string {
  switch (outcome) {
    case "bytes":
      return access === "read" ? "copy sent, owner moves" : "page moved";
    case "zero":
      return access === "read" ? "zero page, owner moves" : "zero page moved";
    case "current":
      return access === "read" ? "owner moves, copy current" : "owner moves, bytes current";
    case "upgrade":
      return "copies invalidated (upgrade)";
    case "local":
      return "no message matched";
  }
}

const pct = (n: number, of: number) => (of ? `${((100 * n) / of).toFixed(1)}%` : "-");
const fit = (s: string, w: number) => (s.length > w ? s.slice(0, w - 1) + "…" : s.padEnd(w));

/** The census as text: a summary, the top pages and the top causes (`top` rows each). */
export function formatCensus(title: string, c: Census, top = 20): string {
  const lines: string[] = [];
  const rate = (n: number) => (n / c.seconds).toFixed(1);
  lines.push(`== ${title}: ${c.seconds.toFixed(1)} s, ${c.faults} faults (${c.faultsPerSecond.toFixed(1)}/s), ${c.remote} remote (${c.remotePerSecond.toFixed(1)}/s) on ${c.pages} pages`);
  lines.push(`   by vCPU: ${c.byVcpu.map((n, v) => `vCPU ${v} ${n} (${rate(n)}/s)`).join(", ")}`);
  lines.push(`   by access: read ${c.byAccess.read} (${pct(c.byAccess.read, c.faults)}), write ${c.byAccess.write} (${pct(c.byAccess.write, c.faults)})`);
  lines.push(
    `   by outcome: ${CENSUS_OUTCOMES.map((o) => `${o} ${c.byOutcome[o]} (${pct(c.byOutcome[o], c.faults)}, mean ${c.meanUsByOutcome[o].toFixed(0)} µs)`).join(", ")}`,
  );
  lines.push(
    `   remote by access and outcome: ${Object.entries(c.byAccessOutcome)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n} (${rate(n)}/s)`)
      .join(", ")}`,
  );
  lines.push(
    `   bounces (a page faulted by the other vCPU than its previous fault): ${c.bounces} (${pct(c.bounces, c.faults)}); invalidations ${c.invalidations}; ` +
      `time in faults ${(c.blockedMs / 1000).toFixed(2)} s (mean remote ${c.meanRemoteUs.toFixed(0)} µs); unmatched grants ${c.unmatched.grants}, invalidations ${c.unmatched.invalidations}; matched with slack ${c.matchedWithSlack}`,
  );
  const v = Math.max(1, c.byVcpu.length);
  lines.push(`   top ${top} pages:`);
  lines.push(`   ${"page".padEnd(9)} ${"faults".padStart(7)} ${"/s".padStart(7)} ${"share".padStart(6)} ${"read".padStart(6)} ${"write".padStart(6)} ${"by vCPU".padEnd(4 + 7 * v)} ${"bytes/cur/zero/upg/local".padEnd(26)} ${"bounce".padStart(6)}  symbols`);
  for (const r of c.pageRows.slice(0, top))
    lines.push(
      `   ${`0x${r.page.toString(16)}`.padEnd(9)} ${String(r.faults).padStart(7)} ${rate(r.faults).padStart(7)} ${pct(r.faults, c.faults).padStart(6)} ${String(r.reads).padStart(6)} ${String(r.writes).padStart(6)} ` +
        `${r.byVcpu.map((n) => String(n).padStart(6)).join(" ").padEnd(4 + 7 * v)} ${[r.outcomes.bytes, r.outcomes.current, r.outcomes.zero, r.outcomes.upgrade, r.outcomes.local].join("/").padEnd(26)} ${String(r.bounces).padStart(6)}  ${r.name}`,
    );
  lines.push(`   top ${top} causes (page group, access, outcome):`);
  lines.push(`   ${"faults".padStart(7)} ${"/s".padStart(7)} ${"share".padStart(6)} ${"pages".padStart(5)} ${"mean µs".padStart(7)}  ${"access".padEnd(6)} ${"outcome".padEnd(30)} group`);
  for (const r of c.causes.slice(0, top))
    lines.push(
      `   ${String(r.faults).padStart(7)} ${rate(r.faults).padStart(7)} ${pct(r.faults, c.faults).padStart(6)} ${String(r.pages).padStart(5)} ${((r.blockedMs * 1000) / r.faults).toFixed(0).padStart(7)}  ${r.access.padEnd(6)} ${fit(outcomeLabel(r.access, r.outcome), 30)} ${r.group}`,
    );
  if (c.interrupts.length) {
    lines.push(`   interrupts between vCPUs and IRQs (recorded at the sender):`);
    for (const r of c.interrupts.slice(0, top))
      lines.push(`   ${String(r.count).padStart(7)} ${rate(r.count).padStart(7)}/s  ${r.kind}${r.vector === null ? "" : ` vector 0x${r.vector.toString(16)}`} ${r.src} -> ${r.dest}`);
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------ naming pages of per-CPU areas

/**
 * Where a kernel's per-CPU areas lie (SMP x86-32: each CPU's copy of the `.data..percpu` section
 * sits at the section's link address + `__per_cpu_offset[cpu]`, in memory the kernel allocated
 * at boot, outside its image). Addresses are kernel virtual; `pageOffset` maps them to physical.
 */
export interface PerCpuLayout {
  /** Kernel virtual address of physical 0 (i386: 0xC0000000). */
  pageOffset: number;
  /** The `.data..percpu` section's link addresses, [start, end) (`__per_cpu_start`, `__per_cpu_end`). */
  start: number;
  end: number;
  /** `__per_cpu_offset[cpu]` as read from the guest (unsigned 32-bit), one per CPU. */
  offsets: readonly number[];
  /**
   * Bytes of each CPU's unit from `start` (default `end - start`): the first chunk's units also
   * hold the reserved and dynamic per-CPU allocations (alloc_percpu) after the static variables.
   */
  unitSize?: number;
}

/** A physical page inside a CPU's per-CPU area: which CPU, and the link-address page it copies. */
export interface PerCpuPlace {
  cpu: number;
  /** Byte offset of the page's start from the section's start (the same for every CPU's copy). */
  unitOffset: number;
  /** Link address of the page's start (symbols of `.data..percpu` are named at these addresses). */
  linkAddress: number;
}

const PAGE_BYTES = 4096;

/** The CPU whose per-CPU area holds physical page `page`, or null when none does. */
export function perCpuPlace(layout: PerCpuLayout, page: number): PerCpuPlace | null {
  const end = layout.start + (layout.unitSize ?? layout.end - layout.start);
  if (!(end > layout.start)) return null;
  const va = (layout.pageOffset + page * PAGE_BYTES) >>> 0;
  for (let cpu = 0; cpu < layout.offsets.length; cpu++) {
    const link = (va - layout.offsets[cpu]!) >>> 0;
    // The page overlaps the unit when [link, link + 4 KiB) meets [start, start + unit).
    if (link < end && link + PAGE_BYTES > layout.start) return { cpu, unitOffset: link - layout.start, linkAddress: link };
  }
  return null;
}

/**
 * A page's name when it lies in a per-CPU area: "per-CPU area of CPU 1 +0x18000: irq_stat,
 * runqueues, rcu_data", the symbols (from `symbolsAt(linkAddress)`, the per-CPU variables on that
 * page of the section; a kernel without KALLSYMS_ALL names none of them, and a full System.map
 * does) shortened to `max`. Null when the page is in no per-CPU area.
 */
export function perCpuPageName(layout: PerCpuLayout, page: number, symbolsAt?: (linkAddress: number) => readonly string[], max = 4): string | null {
  const at = perCpuPlace(layout, page);
  if (!at) return null;
  const dynamic = at.linkAddress >= layout.end ? " (dynamic: alloc_percpu)" : "";
  const head = `per-CPU area of CPU ${at.cpu} +0x${at.unitOffset.toString(16)}${dynamic}`;
  const names = symbolsAt?.(at.linkAddress) ?? [];
  if (names.length === 0) return head;
  const shown = names.slice(0, max);
  return `${head}: ${shown.join(", ")}${names.length > shown.length ? ` +${names.length - shown.length} more` : ""}`;
}

/** An object the caller found in guest memory (a slab object, say), by physical address. */
export interface NamedObject {
  name: string;
  /** Physical address and size in bytes. */
  address: number;
  size: number;
}

/** The names of the objects that overlap physical page `page`, in address order, each once. */
export function objectsOnPage(objects: readonly NamedObject[], page: number): string[] {
  const lo = page * PAGE_BYTES;
  const hi = lo + PAGE_BYTES;
  const on = objects.filter((o) => o.address < hi && o.address + Math.max(1, o.size) > lo).sort((a, b) => a.address - b.address || a.name.localeCompare(b.name));
  return [...new Set(on.map((o) => o.name))];
}
