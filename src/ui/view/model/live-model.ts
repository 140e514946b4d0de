// Everything the panel shows, kept up to date from the input stream. Pure: no DOM, no timers; the
// panel calls `ingest` for each input and `tick` a few times a second with the viewer's clock.

import type { ClusterConfig } from "../../../protocol/messages.ts";
import type { SymbolTable } from "../../../guests/symbols/system-map.ts";
import { HotPages } from "./hot-pages.ts";
import type { ViewInput } from "../../../protocol/telemetry/inputs.ts";
import { checkViewInput } from "../../../protocol/telemetry/inputs.ts";
import { IpiMatrix } from "./ipi-matrix.ts";
import { PageMapModel } from "./page-map.ts";
import { RateTracker, type DerivedRates } from "./rates.ts";
import { TimeSeries } from "./series.ts";
import { TraceRecorder } from "./trace.ts";

export const PLOTTED_RATES = ["readFaults", "writeFaults", "pagesMoved", "invalidations", "ioForwarded", "ipis"] as const;
export type PlottedRate = (typeof PLOTTED_RATES)[number];

/** Link between nodes a and b (a < b), as the RTT plot names it. */
export const linkKey = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);

export interface ModelHealth {
  rejected: number;
  lastError: string | null;
  /** Page runs that arrived before the cluster config (they cannot be placed). */
  pageRunsBeforeConfig: number;
}

export class LiveModel {
  config: ClusterConfig | null = null;
  pageMap: PageMapModel | null = null;
  readonly rates = new RateTracker();
  readonly hot: HotPages;
  readonly ipis = new IpiMatrix();
  readonly trace = new TraceRecorder();
  series = new TimeSeries<PlottedRate>(PLOTTED_RATES);
  rtt = new TimeSeries<string>([]);
  readonly health: ModelHealth = { rejected: 0, lastError: null, pageRunsBeforeConfig: 0 };
  symbols: SymbolTable | null = null;
  /** Where hot-page moves come from: page-state deltas until some node sends page-moves reports. */
  hotSource: "deltas" | "reports" = "deltas";
  private readonly movesSeq = new Map<number, number>();
  private t0: number | null = null;
  private readonly latestRtt = new Map<string, number>();

  constructor(readonly options: { hotWindowMs?: number } = {}) {
    this.hot = new HotPages(options.hotWindowMs ?? 10_000);
  }

  /** Takes one input; a bad one is counted and reported in `health`, never thrown at the feeder. */
  ingest(input: ViewInput): boolean {
    try {
      checkViewInput(input);
      this.apply(input);
      return true;
    } catch (err) {
      this.health.rejected++;
      this.health.lastError = (err as Error).message;
      return false;
    }
  }

  private apply(input: ViewInput): void {
    switch (input.kind) {
      case "config": {
        const c = input.config;
        this.config = c;
        this.pageMap = new PageMapModel(c.nodes, c.memoryPages);
        this.rates.clear();
        this.ipis.clear();
        this.hot.clear();
        const keys: string[] = [];
        for (let a = 0; a < c.nodes; a++) for (let b = a + 1; b < c.nodes; b++) keys.push(linkKey(a, b));
        this.rtt = new TimeSeries<string>(keys);
        this.series = new TimeSeries<PlottedRate>(PLOTTED_RATES);
        this.latestRtt.clear();
        this.movesSeq.clear();
        this.hotSource = "deltas";
        this.t0 = null;
        return;
      }
      case "stats": {
        const s = input.snapshot;
        if (this.config && s.node >= this.config.nodes) throw new RangeError(`stats from node ${s.node}, but the cluster has ${this.config.nodes} nodes`);
        const verdict = this.rates.accept(s, input.receivedMs);
        // Page deltas of a duplicate were already applied; a late snapshot's are older than what
        // the mirror holds, so applying them would undo newer state.
        if (verdict === "duplicate" || verdict === "late") return;
        if (!this.pageMap) {
          this.health.pageRunsBeforeConfig += s.pages.length;
          return;
        }
        this.pageMap.apply(s.node, s.pages, (a) => {
          if (this.hotSource === "deltas") this.hot.record(a.page, a.node, input.receivedMs);
        });
        for (const l of s.links) if (l.peer !== s.node) this.latestRtt.set(linkKey(s.node, l.peer), l.rttUs / 1000);
        return;
      }
      case "ipi-counts":
        this.ipis.report(input.node, input.counts);
        return;
      case "page-moves": {
        // Reports count exactly; from the first one on, deltas no longer feed the hot pages.
        const last = this.movesSeq.get(input.node);
        if (last !== undefined && input.seq <= last) return; // duplicate or late
        this.movesSeq.set(input.node, input.seq);
        this.hotSource = "reports";
        for (const m of input.moves) this.hot.record(m.page, m.to, input.receivedMs, m.count);
        return;
      }
      case "events":
        this.trace.add(input.events);
        return;
    }
  }

  /** Appends one point to the plots (call a few times a second). */
  tick(nowMs: number): void {
    if (this.t0 === null) this.t0 = nowMs;
    const t = (nowMs - this.t0) / 1000;
    const total: DerivedRates = this.rates.total(nowMs);
    this.series.push(t, Object.fromEntries(PLOTTED_RATES.map((k) => [k, total[k]])) as Record<PlottedRate, number>);
    this.rtt.push(t, Object.fromEntries(this.rtt.keys.map((k) => [k, this.latestRtt.get(k) ?? null])));
    this.hot.expire(nowMs);
  }

  /** "jiffies, jiffies_64, ..." for a page of the kernel image, or undefined. */
  describePage(page: number, limit = 4): string | undefined {
    if (!this.symbols) return undefined;
    const { symbols, more } = this.symbols.symbolsOnPage(page, limit + 2);
    // Section starts (from an extracted map) only help where no real symbol is known.
    const real = symbols.filter((s) => !s.name.startsWith("section:"));
    if (real.length === 0) return symbols.length ? `in ${symbols[symbols.length - 1]!.name.slice("section:".length)}` : undefined;
    const shown = real.slice(0, limit);
    const rest = more + real.length - shown.length;
    return shown.map((s) => s.name).join(", ") + (rest ? ` +${rest} more` : "");
  }
}
