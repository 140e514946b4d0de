// The live view panel: mountLiveView(container, source) builds it inside `container`, feeds its
// model from `source`, and redraws a few times a second (never from the input path, so the fault
// path never waits on the DOM). Emits typed ViewEvents: the latency knob and the trace recorder.

import type { SymbolTable } from "../../guests/symbols/system-map.ts";
import { LiveModel } from "./model/live-model.ts";
import type { ViewEvent, ViewSource } from "../../protocol/telemetry/inputs.ts";
import { MAX_ADDED_DELAY_MS } from "../../protocol/types.ts";
import { traceFileName } from "./model/trace.ts";
import { PageMapCanvas } from "./page-map-canvas.ts";
import { Plots } from "./plots.ts";
import { renderHotPages, renderIpiMatrix, renderNodes } from "./sections.ts";
import "./view.css";

export interface LiveViewOptions {
  /** Redraw period of the page map; the model takes inputs at any rate. Default 500 ms. */
  refreshMs?: number;
  /** Redraw period of the plots and the nodes, hot-page and IPI sections. Default 1000 ms. */
  slowRefreshMs?: number;
  /** Length of a recorded trace. Default 3 s. */
  traceSeconds?: number;
  /** Start collapsed (the model keeps updating, nothing is drawn). */
  collapsed?: boolean;
  /** Viewer's clock (ms); default performance.now. */
  now?: () => number;
  /** Width of the plots in CSS pixels. Default 440. */
  plotWidth?: number;
  /** The node this tab hosts, if any (the page map's hover then says what this tab holds). */
  localNode?: number;
}

export interface LiveViewHandle {
  readonly model: LiveModel;
  /** Listens to the view's events (knob, trace); returns an unsubscribe function. */
  on(listener: (e: ViewEvent) => void): () => void;
  setSymbols(table: SymbolTable | null): void;
  setCollapsed(collapsed: boolean): void;
  /** The node this tab hosts (null: none), when it is known only later (a tab joining a cluster). */
  setLocalNode(node: number | null): void;
  /**
   * Shows a link delay set elsewhere (another tab of the cluster) on the knob, without emitting
   * `set-link-delay` (the setting is already in force).
   */
  showLinkDelay(ms: number): void;
  /** Records a trace now (what the button does); resolves with the file's JSON text. */
  recordTrace(): Promise<string>;
  /** Greys out the knob and the trace button, saying why (null: usable again). */
  lockControls(reason: string | null): void;
  /** Draws now (tests; the panel also draws on its own timer). */
  renderNow(): void;
  destroy(): void;
}

export function mountLiveView(container: HTMLElement, source: ViewSource, options: LiveViewOptions = {}): LiveViewHandle {
  const now = options.now ?? (() => performance.now());
  const slowMs = options.slowRefreshMs ?? 1000;
  const model = new LiveModel();
  const listeners = new Set<(e: ViewEvent) => void>();
  const emit = (e: ViewEvent) => listeners.forEach((l) => l(e));

  const root = h("section", "lv-panel");
  root.setAttribute("aria-label", "Live view");
  const header = h("header", "lv-header");
  const toggle = h("button", "lv-toggle") as HTMLButtonElement;
  toggle.type = "button";
  const title = h("h2", "lv-title", "Live view");
  const health = h("span", "lv-health lv-muted");
  header.append(toggle, title, health);
  const body = h("div", "lv-body");
  root.append(header, body);

  // Controls: latency knob and trace export.
  const controls = h("div", "lv-controls");
  const knobLabel = h("label", "lv-knob");
  const knobOn = document.createElement("input");
  knobOn.type = "checkbox";
  knobOn.className = "lv-knob-on";
  knobOn.setAttribute("aria-label", "add link delay");
  const knob = document.createElement("input");
  knob.type = "range";
  knob.className = "lv-knob-range";
  knob.min = "0";
  knob.max = String(MAX_ADDED_DELAY_MS);
  knob.step = "1";
  knob.value = "10";
  knob.disabled = true;
  knob.setAttribute("aria-label", "added one-way link delay in milliseconds");
  const knobValue = h("output", "lv-knob-value", "off");
  knobLabel.append(knobOn, h("span", "", "link delay"), knob, knobValue);
  const traceButton = h("button", "lv-trace") as HTMLButtonElement;
  traceButton.type = "button";
  const traceSeconds = options.traceSeconds ?? 3;
  traceButton.textContent = `Record ${traceSeconds} s trace`;
  const TRACE_TITLE = "Records DSM and interrupt events and downloads a Chrome trace (open it in ui.perfetto.dev or chrome://tracing)";
  traceButton.title = TRACE_TITLE;
  /** Why the controls are greyed out (a watcher without the right), or null. */
  let locked: string | null = null;
  controls.append(knobLabel, traceButton);

  const delayMs = () => (knobOn.checked ? Number(knob.value) : 0);
  const showKnob = () => (knobValue.textContent = knobOn.checked ? `${knob.value} ms` : "off");
  knob.addEventListener("input", showKnob);
  knob.addEventListener("change", () => emit({ kind: "set-link-delay", ms: delayMs() }));
  knobOn.addEventListener("change", () => {
    knob.disabled = !knobOn.checked;
    showKnob();
    emit({ kind: "set-link-delay", ms: delayMs() });
  });

  // Each section has a one-line caption saying what to look for: the panel is for students.
  const section = (name: string, title: string, caption: string, content: HTMLElement) => {
    const s = h("section", `lv-section lv-sec-${name}`);
    s.append(h("h3", "", title), h("p", "lv-caption", caption), content);
    body.append(s);
    return content;
  };
  body.append(controls);
  const nodesEl = section("nodes", "Nodes and vCPUs", "Each node is a tab. A vCPU waiting for a page runs no instructions until the page arrives over the link.", h("div", "lv-nodes"));
  const pageMap = new PageMapCanvas(model, 16, options.localNode ?? null);
  section("map", "Guest memory: who owns each page", "One cell per 4 KiB page (or group), coloured by the node that owns it. A page moves to the node whose vCPU touches it. Hover a cell.", pageMap.root);
  const hotEl = section("hotpages", "Hot pages", "The pages that moved most in the last seconds: data every CPU writes (timer ticks, locks) bounces between nodes.", h("div", "lv-hotlist"));
  const plots = new Plots(model, options.plotWidth ?? 440);
  section("plotsection", "Over time (whole cluster)", "Every fault that crosses a link costs about one round trip; turn the link delay up and watch.", plots.root);
  const ipiEl = section("ipi", "Interrupts between CPUs", "Who interrupted whom: INIT/SIPI start the CPUs, fixed IPIs reschedule and flush TLBs. Hover a cell for the kinds.", h("div", "lv-ipis"));
  container.append(root);

  let collapsed = options.collapsed ?? false;
  const setCollapsed = (c: boolean) => {
    collapsed = c;
    root.classList.toggle("lv-collapsed", c);
    toggle.textContent = c ? "▸" : "▾";
    toggle.setAttribute("aria-expanded", String(!c));
    toggle.title = c ? "Show the live view" : "Hide the live view";
    if (!c) renderNow();
  };
  toggle.addEventListener("click", () => setCollapsed(!collapsed));

  // Inputs only touch the model (cheap); drawing happens on the timer.
  let configGen = 0;
  const unsubscribe = source.subscribe((input) => {
    model.ingest(input);
    if (input.kind === "config") configGen++;
  });

  let drawnConfig = -1;
  let slowDrawnAt = -Infinity;
  /**
   * Draws the page map; the DOM sections and the plots (rates per second, and the costly part:
   * uPlot and DOM rebuilds were most of the panel's main-thread time) only when `all` or once per
   * `slowMs`.
   */
  function draw(all: boolean): void {
    const t = now();
    if (configGen !== drawnConfig) {
      drawnConfig = configGen;
      pageMap.relayout();
    }
    pageMap.render(t);
    if (!all && t - slowDrawnAt < slowMs) return;
    slowDrawnAt = t;
    renderNodes(nodesEl, model);
    renderHotPages(hotEl, model, t);
    plots.render();
    renderIpiMatrix(ipiEl, model);
    const r = model.rates.health;
    const problems = [
      model.health.rejected ? `${model.health.rejected} bad inputs (last: ${model.health.lastError})` : "",
      r.missing ? `${r.missing} snapshots lost` : "",
      r.resets ? `${r.resets} node restarts` : "",
    ].filter(Boolean);
    health.textContent = problems.join(" · ");
    health.title = problems.join("\n");
  }

  function renderNow(): void {
    draw(true);
  }

  const timer = setInterval(() => {
    model.tick(now());
    if (!collapsed && !document.hidden) draw(false);
  }, options.refreshMs ?? 500);

  async function recordTrace(): Promise<string> {
    if (model.trace.recording) throw new Error("a trace is already being recorded");
    model.trace.start(now());
    emit({ kind: "trace", recording: true });
    traceButton.disabled = true;
    try {
      for (let left = traceSeconds; left > 0; left--) {
        traceButton.textContent = `Recording… ${left} s`;
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      model.trace.stop(now());
      emit({ kind: "trace", recording: false });
      traceButton.disabled = false;
      traceButton.textContent = `Record ${traceSeconds} s trace`;
    }
    const config = model.config;
    const trace = model.trace.build({
      nodes: config?.nodes ?? 1,
      vcpuHome: config?.vcpuHome ?? [],
      describePage: (p) => model.describePage(p, 3),
    });
    return JSON.stringify(trace);
  }

  traceButton.addEventListener("click", () => {
    void recordTrace().then((text) => {
      const fileName = traceFileName(new Date());
      download(fileName, text);
      emit({ kind: "trace-exported", fileName, events: model.trace.count });
    });
  });

  setCollapsed(collapsed);
  return {
    model,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    setSymbols(table) {
      model.symbols = table;
    },
    setCollapsed,
    setLocalNode(node) {
      pageMap.localNode = node;
      drawnConfig = -1; // the legend and the small squares change with it
    },
    lockControls(reason) {
      locked = reason;
      knobOn.disabled = traceButton.disabled = reason !== null;
      knob.disabled = reason !== null || !knobOn.checked;
      knobLabel.title = reason ?? "";
      traceButton.title = reason ?? TRACE_TITLE;
    },
    showLinkDelay(ms) {
      if (!Number.isInteger(ms) || ms < 0 || ms > MAX_ADDED_DELAY_MS) throw new RangeError(`link delay ${String(ms)} ms is not an integer in 0..${MAX_ADDED_DELAY_MS}`);
      knobOn.checked = ms > 0;
      knob.disabled = ms === 0 || locked !== null;
      if (ms > 0) knob.value = String(ms);
      showKnob();
    },
    recordTrace,
    renderNow,
    destroy() {
      clearInterval(timer);
      unsubscribe();
      plots.destroy();
      root.remove();
    },
  };
}

function download(fileName: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function h(tag: string, className: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
