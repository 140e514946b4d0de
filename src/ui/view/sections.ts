// The panel's small DOM sections: nodes and vCPUs, hot pages, IPI matrix. Each rebuilds its
// children from the model when asked (a few times a second at most), nothing else.

import type { LiveModel } from "./model/live-model.ts";
import { hex, nodeColor, shortNumber, VCPU_STATE_COLORS, VCPU_STATE_LABELS } from "./colors.ts";

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function renderNodes(root: HTMLElement, model: LiveModel): void {
  const config = model.config;
  const cards: HTMLElement[] = [];
  const nodes = config ? Array.from({ length: config.nodes }, (_, n) => n) : model.rates.nodes().map((r) => r.node);
  for (const n of nodes) {
    const r = model.rates.node(n);
    const card = el("div", "lv-node");
    card.dataset.node = String(n);
    card.style.borderColor = nodeColor(n);
    const head = el("div", "lv-node-head");
    const name = el("span", "lv-node-name", n === 0 ? "node 0 · devices" : `node ${n}`);
    name.style.color = nodeColor(n);
    head.append(name);
    card.append(head);
    if (r?.derived) {
      const d = r.derived;
      card.append(el("div", "lv-muted lv-node-rates", `${shortNumber(d.readFaults + d.writeFaults)} faults/s · ${shortNumber(d.pagesMoved)} pages sent/s`));
    } else card.append(el("div", "lv-muted lv-node-rates", r ? "first report" : "no report yet"));
    const homed = config ? config.vcpuHome.flatMap((h, v) => (h === n ? [v] : [])) : (r?.vcpus.map((v) => v.vcpu) ?? []);
    for (const v of homed) {
      const vr = r?.vcpus.find((x) => x.vcpu === v);
      const row = el("div", "lv-vcpu");
      row.dataset.vcpu = String(v);
      row.dataset.state = vr?.state ?? "unknown";
      const dot = el("i", "lv-dot");
      dot.style.background = vr ? VCPU_STATE_COLORS[vr.state] : "#333";
      row.append(dot, el("span", "lv-vcpu-name", `vCPU ${v}`), el("span", "lv-vcpu-state", vr ? VCPU_STATE_LABELS[vr.state] : "–"));
      row.append(el("span", "lv-vcpu-ips", vr?.instructionsPerSec != null ? `${shortNumber(vr.instructionsPerSec)} instr/s` : ""));
      card.append(row);
    }
    if (r && r.links.length) {
      const links = el("div", "lv-muted lv-links", "RTT " + r.links.map((l) => `→${l.peer} ${(l.rttUs / 1000).toFixed(1)} ms`).join(" · "));
      card.append(links);
    }
    cards.push(card);
  }
  root.replaceChildren(...cards);
}

export function renderHotPages(root: HTMLElement, model: LiveModel, nowMs: number, k = 8): void {
  const hot = model.hot.top(k, nowMs);
  if (hot.length === 0) {
    root.replaceChildren(el("div", "lv-muted", `No page moved in the last ${Math.round(model.hot.windowMs / 1000)} s.`));
    return;
  }
  const max = hot[0]!.moves;
  const rows = hot.map((h) => {
    const row = el("div", "lv-hot");
    row.dataset.page = String(h.page);
    const bar = el("div", "lv-hot-bar");
    bar.style.width = `${Math.max(4, (h.moves / max) * 100)}%`;
    const owner = model.pageMap?.ownerOf(h.page) ?? null;
    bar.style.background = owner === null ? "#59616b" : nodeColor(owner);
    const label = el("div", "lv-hot-label");
    label.append(el("span", "lv-mono", hex(h.page)), el("span", "lv-hot-moves", `${h.moves}×`));
    const where = [...h.arrivals.keys()].sort((a, b) => a - b).map((n) => `node ${n}`).join(" ↔ ");
    label.append(el("span", "lv-muted", where));
    const syms = model.describePage(h.page, 3);
    if (syms) label.append(el("span", "lv-sym", syms));
    row.append(bar, label);
    return row;
  });
  root.replaceChildren(...rows);
}

export function renderIpiMatrix(root: HTMLElement, model: LiveModel): void {
  const cells = model.ipis.cells();
  const cpus = model.config?.vcpuHome.length ?? Math.max(0, ...cells.map((c) => Math.max(c.src, c.dest) + 1));
  if (cpus === 0) {
    root.replaceChildren(el("div", "lv-muted", "No IPIs yet."));
    return;
  }
  const max = Math.max(1, ...cells.map((c) => c.total));
  const table = el("table", "lv-matrix");
  const head = el("tr");
  head.append(el("th", "lv-muted", "from \\ to"));
  for (let d = 0; d < cpus; d++) head.append(el("th", "", `CPU ${d}`));
  table.append(head);
  for (let s = 0; s < cpus; s++) {
    const tr = el("tr");
    tr.append(el("th", "", `CPU ${s}`));
    for (let d = 0; d < cpus; d++) {
      const cell = cells.find((c) => c.src === s && c.dest === d);
      const td = el("td", "", cell ? shortNumber(cell.total) : s === d ? "" : "·");
      td.dataset.src = String(s);
      td.dataset.dest = String(d);
      if (cell) {
        const alpha = 0.15 + 0.7 * (cell.total / max);
        td.style.background = `rgba(240, 228, 66, ${alpha.toFixed(2)})`;
        td.style.color = alpha > 0.5 ? "#111" : "";
        const kinds = Object.entries(cell.byKind).map(([k, c]) => `${k} ${c}`);
        td.title = `CPU ${s} → CPU ${d}: ${kinds.join(", ")}`;
        const sub = el("div", "lv-kinds", Object.keys(cell.byKind).map((k) => KIND_SHORT[k] ?? k).join(" "));
        td.append(sub);
      }
      tr.append(td);
    }
    table.append(tr);
  }
  root.replaceChildren(table);
}

const KIND_SHORT: Record<string, string> = { fixed: "fix", lowest: "low", init: "INIT", "init-deassert": "deas", startup: "SIPI", nmi: "NMI", smi: "SMI", extint: "ext", irq: "IRQ" };
