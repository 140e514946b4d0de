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
  /**
   * Snapshots from a node the hosts say is offline, dropped: tab 0 says a node is online before it
   * starts it and offline only after it ended, so these are a departed node's late ones (applying
   * them would give it back pages it no longer holds).
   */
  offlineSnapshots: number;
}

/** An elastic VM's vCPUs as the view last heard them (see the `hosts` input). */
export interface VmHosts {
  /** For each possible vCPU v (node v): the tab running it, or null while it is offline. */
  hosts: (number | null)[];
  /** The join or leave under way ("tab 3 joins with vCPU 2"), "" when none. */
  changing: string;
  /** Viewer's clock when it arrived. */
  receivedMs: number;
  /** Nodes that were online since the config came and are offline now, with the tab they left. */
  left: Map<number, number>;
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
  readonly health: ModelHealth = { rejected: 0, lastError: null, pageRunsBeforeConfig: 0, offlineSnapshots: 0 };
  /**
   * An elastic VM's vCPUs (which are online, on which tab, the change under way); null for a VM
   * that never sent them (every node of the config is online). Browser tests read it from
   * `giantwebView.model.hosts`.
   */
  hosts: VmHosts | null = null;
  /** Nodes online at some point since the config (the RTT plot's links are among these). */
  private readonly everOnline = new Set<number>();
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
        if (this.hosts && this.hosts.hosts.length !== c.nodes) this.hosts = null; // another VM's
        this.everOnline.clear();
        if (this.hosts) this.hosts.left.clear();
        this.markOnline();
        this.rtt = new TimeSeries<string>(this.linkKeys());
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
        if (!this.online(s.node)) {
          this.health.offlineSnapshots++;
          return;
        }
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
      case "hosts":
        return this.applyHosts(input.hosts, input.changing, input.receivedMs);
    }
  }

  /** Whether node `node` runs now (always, for a VM that sends no hosts). */
  online(node: number): boolean {
    return this.hosts === null || (this.hosts.hosts[node] ?? null) !== null;
  }

  /** The tab running node `node` (null: offline, or not known: a VM that sends no hosts). */
  tabOf(node: number): number | null {
    return this.hosts?.hosts[node] ?? null;
  }

  private applyHosts(hosts: (number | null)[], changing: string, receivedMs: number): void {
    const nodes = this.config?.nodes;
    if (nodes !== undefined && hosts.length !== nodes) throw new RangeError(`hosts for ${hosts.length} vCPUs, but the VM has ${nodes}`);
    const before = this.hosts?.hosts ?? null;
    const left = this.hosts?.left ?? new Map<number, number>();
    const gone: number[] = [];
    hosts.forEach((tab, n) => {
      // Before the first hosts every node counted as online.
      const was = before ? (before[n] ?? null) : -1;
      if (tab === was || (tab !== null && was === -1)) return;
      if (tab === null) {
        // Whatever the view holds of it is stale now.
        if (was !== null && was !== -1) left.set(n, was);
        if (was !== null) gone.push(n);
      } else left.delete(n); // a new node: its counters and report numbers start again
      this.rates.forget(n);
      this.movesSeq.delete(n);
      for (const k of [...this.latestRtt.keys()]) if (k.split("-").includes(String(n))) this.latestRtt.delete(k);
    });
    this.hosts = { hosts: [...hosts], changing, receivedMs, left };
    this.pageMap?.dropNodes(gone.filter((n) => n < this.pageMap!.nodes));
    const ever = [...this.everOnline].join();
    if (before === null) this.everOnline.clear(); // the config alone made every node count
    this.markOnline();
    if (this.config && [...this.everOnline].join() !== ever) this.rtt = this.rtt.withKeys(this.linkKeys());
  }

  private markOnline(): void {
    const n = this.config?.nodes ?? 0;
    for (let v = 0; v < n; v++) if (this.online(v)) this.everOnline.add(v);
  }

  /** The RTT plot's links: between nodes that were online (all of them without hosts). */
  private linkKeys(): string[] {
    const on = [...this.everOnline].sort((a, b) => a - b);
    const keys: string[] = [];
    for (let i = 0; i < on.length; i++) for (let j = i + 1; j < on.length; j++) keys.push(linkKey(on[i]!, on[j]!));
    return keys;
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
