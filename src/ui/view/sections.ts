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

/** One node as the nodes section shows it. */
export interface RosterNode {
  node: number;
  /** The vCPUs it hosts (the config's vcpuHome; node v hosts vCPU v on a cluster of tabs). */
  vcpus: number[];
  /** The tab running it, when the VM says (an elastic VM's hosts); null otherwise. */
  tab: number | null;
}

/** The nodes section's content: running nodes get a card, offline ones one compact line. */
export interface Roster {
  online: RosterNode[];
  /** Offline nodes (an elastic VM's vCPUs not in the VM), with the tab a departed one left. */
  offline: (RosterNode & { leftTab: number | null })[];
  /** The join or leave under way, "" when none. */
  changing: string;
}

export function nodeRoster(model: LiveModel): Roster {
  const config = model.config;
  const nodes = config ? Array.from({ length: config.nodes }, (_, n) => n) : model.rates.nodes().map((r) => r.node);
  const roster: Roster = { online: [], offline: [], changing: model.hosts?.changing ?? "" };
  for (const n of nodes) {
    const r = model.rates.node(n);
    const vcpus = config ? config.vcpuHome.flatMap((h, v) => (h === n ? [v] : [])) : (r?.vcpus.map((v) => v.vcpu) ?? []);
    const entry = { node: n, vcpus, tab: model.tabOf(n) };
    if (model.online(n)) roster.online.push(entry);
    else roster.offline.push({ ...entry, leftTab: model.hosts?.left.get(n) ?? null });
  }
  return roster;
}

/** "vCPU 2 (left tab 3) · vCPUs 3–5, 7–15": offline nodes in a line, never-used ones as ranges. */
export function offlineSummary(offline: Roster["offline"]): string {
  const parts = offline.filter((o) => o.leftTab !== null).map((o) => `${nodeLabel(o)} (left tab ${o.leftTab})`);
  const rest = offline.filter((o) => o.leftTab === null);
  const cpus = rest.flatMap((o) => o.vcpus).sort((a, b) => a - b);
  if (cpus.length) parts.push(`vCPU${cpus.length > 1 ? "s" : ""} ${ranges(cpus)}`);
  const bare = rest.filter((o) => o.vcpus.length === 0).map((o) => o.node);
  if (bare.length) parts.push(`node${bare.length > 1 ? "s" : ""} ${ranges(bare)}`);
  return parts.join(" · ");
}

const nodeLabel = (o: RosterNode) => (o.vcpus.length ? `vCPU${o.vcpus.length > 1 ? "s" : ""} ${ranges(o.vcpus)}` : `node ${o.node}`);

/** [0, 1, 2, 5, 7, 8] -> "0–2, 5, 7, 8". */
export function ranges(sorted: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j - i >= 2 ? `${sorted[i]}–${sorted[j]}` : sorted.slice(i, j + 1).join(", "));
    i = j + 1;
  }
  return out.join(", ");
}

export function renderNodes(root: HTMLElement, model: LiveModel): void {
  const roster = nodeRoster(model);
  const children: HTMLElement[] = [];
  if (roster.changing) {
    const c = el("div", "lv-changing", `⇄ ${roster.changing}`);
    c.title = "A vCPU is joining or leaving the running VM: its node starts (or ends) and its pages move.";
    children.push(c);
  }
  for (const { node: n, vcpus: homed, tab } of roster.online) {
    const r = model.rates.node(n);
    const card = el("div", "lv-node");
    card.dataset.node = String(n);
    card.dataset.online = "true";
    if (tab !== null) card.dataset.tab = String(tab);
    card.style.borderColor = nodeColor(n);
    const head = el("div", "lv-node-head");
    const name = el("span", "lv-node-name", n === 0 ? "node 0 · devices" : `node ${n}`);
    name.style.color = nodeColor(n);
    head.append(name);
    if (tab !== null) head.append(el("span", "lv-node-tab", `tab ${tab}`));
    card.append(head);
    if (r?.derived) {
      const d = r.derived;
      card.append(el("div", "lv-muted lv-node-rates", `${shortNumber(d.readFaults + d.writeFaults)} faults/s · ${shortNumber(d.pagesMoved)} pages sent/s`));
    } else card.append(el("div", "lv-muted lv-node-rates", r ? "first report" : "no report yet"));
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
    children.push(card);
  }
  if (roster.offline.length) {
    // Offline nodes show no rates (their last ones are not live): one grey line, whatever their number.
    const line = el("div", "lv-offline lv-muted");
    line.dataset.nodes = roster.offline.map((o) => o.node).join(",");
    line.append(el("span", "lv-offline-label", "offline: "), offlineSummary(roster.offline));
    line.title = "vCPUs the VM can take but runs without now: a tab that joins brings one online.";
    children.push(line);
  }
  root.replaceChildren(...children);
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
  const cpuList = ipiCpus(model);
  const cpus = cpuList.length;
  if (cpus === 0) {
    root.replaceChildren(el("div", "lv-muted", "No IPIs yet."));
    return;
  }
  const max = Math.max(1, ...cells.map((c) => c.total));
  const table = el("table", "lv-matrix");
  const head = el("tr");
  head.append(el("th", "lv-muted", "from \\ to"));
  for (const d of cpuList) head.append(el("th", "", `CPU ${d}`));
  table.append(head);
  for (const s of cpuList) {
    const tr = el("tr");
    tr.append(el("th", "", `CPU ${s}`));
    for (const d of cpuList) {
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

/**
 * The matrix's CPUs: every vCPU of the config, but on an elastic VM only those online or with
 * counts (16 possible vCPUs with 2 online make a 2×2 matrix, not 16×16).
 */
export function ipiCpus(model: LiveModel): number[] {
  const cells = model.ipis.cells();
  const config = model.config;
  const n = config?.vcpuHome.length ?? Math.max(0, ...cells.map((c) => Math.max(c.src, c.dest) + 1));
  const all = Array.from({ length: n }, (_, v) => v);
  if (!config || !model.hosts) return all;
  const counted = new Set(cells.flatMap((c) => [c.src, c.dest]));
  return all.filter((v) => counted.has(v) || model.online(config.vcpuHome[v]!));
}

const KIND_SHORT: Record<string, string> = { fixed: "fix", lowest: "low", init: "INIT", "init-deassert": "deas", startup: "SIPI", nmi: "NMI", smi: "SMI", extint: "ext", irq: "IRQ" };
