// The plots over time, drawn by uPlot: faults, pages moved and invalidations, forwarded I/O and
// IPIs (all per second, whole cluster), and each link's round trip.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { LiveModel, PlottedRate } from "./model/live-model.ts";
import { shortNumber } from "./colors.ts";

// Links are pairs of nodes, so they get their own palette (not the nodes' colours).
const LINK_COLORS = ["#e8684a", "#56c7e8", "#c9d1d9", "#f0e442", "#9b7cf6", "#3fcf8e", "#e05cb0", "#f5a524"];

interface PlotSpec {
  title: string;
  unit: string;
  /** `short` names the series in the title's latest values. */
  series: { key: PlottedRate; label: string; short: string; color: string }[];
}

const RATE_PLOTS: PlotSpec[] = [
  { title: "Page faults /s", unit: "/s", series: [
    { key: "readFaults", label: "read faults", short: "read", color: "#56c7e8" },
    { key: "writeFaults", label: "write faults", short: "write", color: "#f5a524" },
  ] },
  { title: "Pages moved /s", unit: "/s", series: [
    { key: "pagesMoved", label: "pages moved", short: "moved", color: "#3fcf8e" },
    { key: "invalidations", label: "invalidations", short: "invalidated", color: "#e05cb0" },
  ] },
  { title: "Forwarded /s", unit: "/s", series: [
    { key: "ioForwarded", label: "I/O to node 0", short: "I/O", color: "#9b7cf6" },
    { key: "ipis", label: "IPIs", short: "IPIs", color: "#f0e442" },
  ] },
];

const AXIS = { stroke: "#8b949e", grid: { stroke: "#222a33", width: 1 }, ticks: { stroke: "#2a323c", width: 1 } };

function options(title: string, unit: string, series: { label: string; color: string }[], width: number): uPlot.Options {
  return {
    title,
    width,
    height: 120,
    cursor: { drag: { x: false, y: false } },
    // Labels only; the latest values are written into the title (see latestTitle).
    legend: { live: false },
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { ...AXIS, values: (_u, ticks) => ticks.map((t) => `${Math.round(t)} s`) },
      { ...AXIS, size: 48, values: (_u, ticks) => ticks.map((t) => shortNumber(t)) },
    ],
    series: [
      { label: "t", value: (_u, v) => (v == null ? "" : `${v.toFixed(1)} s`) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        fill: s.color + "22",
        spanGaps: false,
        value: (_u: uPlot, v: number | null) => (v == null ? "–" : `${shortNumber(v)}${unit === "ms" ? " ms" : unit}`),
      })),
    ],
  };
}

export class Plots {
  readonly root: HTMLElement;
  private readonly rate: { plot: uPlot; spec: PlotSpec }[] = [];
  private rtt: uPlot | null = null;
  private rttKeys: string | null = null;
  private readonly rttHolder: HTMLElement;

  constructor(
    private readonly model: LiveModel,
    private readonly width = 440,
  ) {
    this.root = document.createElement("div");
    this.root.className = "lv-plots";
    for (const spec of RATE_PLOTS) {
      const holder = document.createElement("div");
      holder.className = "lv-plot";
      holder.dataset.plot = spec.series.map((s) => s.key).join(",");
      this.root.append(holder);
      this.rate.push({ spec, plot: new uPlot(options(spec.title, spec.unit, spec.series, width), [[]], holder) });
    }
    this.rttHolder = document.createElement("div");
    this.rttHolder.className = "lv-plot";
    this.rttHolder.dataset.plot = "rtt";
    this.root.append(this.rttHolder);
  }

  render(): void {
    const data = this.model.series.data();
    this.rate.forEach(({ plot, spec }) => {
      const cols = spec.series.map((s) => data[1 + this.model.series.keys.indexOf(s.key)]!);
      plot.setData([data[0], ...cols] as uPlot.AlignedData);
      setTitle(plot, spec.title, spec.series.map((s, i) => [s.short, last(cols[i]!)]), "");
    });
    const keys = this.model.rtt.keys.join(",");
    if (keys !== this.rttKeys) {
      this.rtt?.destroy();
      this.rttHolder.replaceChildren();
      this.rttKeys = keys;
      const series = this.model.rtt.keys.map((k, i) => ({ label: `link ${k.replace("-", "↔")}`, color: LINK_COLORS[i % LINK_COLORS.length]! }));
      this.rtt = new uPlot(options("Link round trip", "ms", series, this.width), [[]], this.rttHolder);
    }
    const rtt = this.model.rtt.data();
    this.rtt!.setData(rtt as uPlot.AlignedData);
    setTitle(this.rtt!, "Link round trip", this.model.rtt.keys.map((k, i) => [k.replace("-", "↔"), last(rtt[1 + i]!)]), " ms");
  }

  destroy(): void {
    for (const { plot } of this.rate) plot.destroy();
    this.rtt?.destroy();
  }
}

const last = (col: (number | null)[]): number | null => (col.length ? col[col.length - 1]! : null);

/** "Page faults per second · read 40 · write 55": the latest values, readable without hovering. */
function setTitle(plot: uPlot, title: string, values: [string, number | null][], unit: string): void {
  const el = plot.root.querySelector(".u-title");
  if (!el) return;
  const parts = values.filter(([, v]) => v !== null).map(([k, v]) => `${k} ${unit ? (v as number).toFixed(1) : shortNumber(v as number)}${unit}`);
  el.textContent = parts.length ? `${title} · ${parts.join(" · ")}` : title;
}
