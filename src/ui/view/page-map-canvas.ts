// The page map on a canvas: one cell per page (or per group of pages at coarser zooms), coloured
// by owner node and shaded by state; cells of the hottest pages are outlined. Drawn through
// ImageData (tens of thousands of cells), only when the map or the zoom changed.

import { cellColor, hex, nodeColor, rgba32, parseHex, BACKGROUND, type Rgb } from "./colors.ts";
import { cellAt, fittingZoom, layoutGrid, ZOOMS, type GridLayout } from "./page-grid.ts";
import type { LiveModel } from "./model/live-model.ts";
import { NO_OWNER } from "./model/page-map.ts";
import { pageStateCode } from "../../protocol/stats.ts";
import { PAGE_SIZE } from "../../protocol/types.ts";

const MODIFIED = pageStateCode("modified");
const INVALID = pageStateCode("invalid");

export class PageMapCanvas {
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly scroller: HTMLElement;
  private readonly zoomSelect: HTMLSelectElement;
  private readonly legend: HTMLElement;
  private readonly tooltip: HTMLElement;
  private layout: GridLayout | null = null;
  private drawnGeneration = -1;
  private drawnHot = "";
  private hover: { x: number; y: number } | null = null;
  // Kept between draws: a new context lookup, image buffer and colour parse per frame were most of
  // the map's cost (profiled during a boot).
  private ctx: CanvasRenderingContext2D | null = null;
  private image: ImageData | null = null;
  private readonly colors = new Map<number, number>();

  constructor(
    private readonly model: LiveModel,
    private readonly hotOutline = 16,
    /** This tab's node, when it hosts one: the tooltip says what this tab holds (set again when a cluster tab learns it). */
    public localNode: number | null = null,
  ) {
    this.root = el("div", "lv-pagemap");
    const bar = el("div", "lv-row lv-pagemap-bar");
    this.legend = el("div", "lv-legend");
    this.zoomSelect = el("select", "lv-zoom") as HTMLSelectElement;
    this.zoomSelect.title = "Pages per cell";
    this.zoomSelect.setAttribute("aria-label", "pages per cell");
    for (const z of ZOOMS) this.zoomSelect.append(new Option(z === 1 ? "1 page / cell" : `${z} pages / cell`, String(z)));
    this.zoomSelect.addEventListener("change", () => this.relayout(Number(this.zoomSelect.value)));
    bar.append(this.legend, this.zoomSelect);
    this.scroller = el("div", "lv-pagemap-scroll");
    this.canvas = document.createElement("canvas");
    this.canvas.className = "lv-pagemap-canvas";
    this.scroller.append(this.canvas);
    this.tooltip = el("div", "lv-tooltip");
    this.tooltip.hidden = true;
    this.root.append(bar, this.scroller, this.tooltip);
    this.canvas.addEventListener("mousemove", (e) => {
      const r = this.canvas.getBoundingClientRect();
      this.hover = { x: e.clientX - r.left, y: e.clientY - r.top };
      this.showTooltip(e.clientX - this.root.getBoundingClientRect().left, e.clientY - this.root.getBoundingClientRect().top);
    });
    this.canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.tooltip.hidden = true;
    });
  }

  get zoom(): number {
    return this.layout?.pagesPerCell ?? 1;
  }

  /** Sets the pages per cell (one of ZOOMS). */
  relayout(pagesPerCell?: number): void {
    const map = this.model.pageMap;
    if (!map) return;
    const z = pagesPerCell ?? fittingZoom(map.pages);
    this.layout = layoutGrid(map.pages, z);
    this.zoomSelect.value = String(z);
    const { columns, rows, cellPx } = this.layout;
    const dpr = Math.max(1, Math.round(globalThis.devicePixelRatio ?? 1));
    this.canvas.width = columns * cellPx * dpr;
    this.canvas.height = rows * cellPx * dpr;
    this.canvas.style.width = `${columns * cellPx}px`;
    this.canvas.style.height = `${rows * cellPx}px`;
    this.drawnGeneration = -1;
    this.colors.clear(); // keys depend on the node count
  }

  render(nowMs: number): void {
    const map = this.model.pageMap;
    if (!map) return;
    if (!this.layout || this.layout.pages !== map.pages) this.relayout();
    const hot = this.model.hot.top(this.hotOutline, nowMs);
    const hotKey = hot.map((h) => h.page).join(",");
    if (map.generation === this.drawnGeneration && hotKey === this.drawnHot) return;
    this.drawnGeneration = map.generation;
    this.drawnHot = hotKey;
    this.draw(hot.map((h) => h.page));
    this.renderLegend();
    if (this.hover) this.refreshTooltipText();
  }

  private draw(hotPages: number[]): void {
    const g = this.layout!;
    const map = this.model.pageMap!;
    const ctx = (this.ctx ??= this.canvas.getContext("2d")!);
    const W = this.canvas.width;
    const H = this.canvas.height;
    const s = W / (g.columns * g.cellPx); // device pixels per CSS pixel
    if (this.image?.width !== W || this.image.height !== H) this.image = ctx.createImageData(W, H);
    const img = this.image;
    const px = new Uint32Array(img.data.buffer);
    px.fill(this.color(-1, () => parseHex(BACKGROUND)));
    const cellDev = Math.round(g.cellPx * s);
    const fillDev = Math.max(1, cellDev - Math.max(1, Math.round(s))); // leave a 1 px gap
    const counts = new Uint32Array(map.nodes + 1);
    const local = this.localNode !== null ? (map.mirrors[this.localNode] ?? null) : null;
    const cells = Math.ceil(g.pages / g.pagesPerCell);
    for (let cell = 0; cell < cells; cell++) {
      const first = cell * g.pagesPerCell;
      const end = Math.min(g.pages, first + g.pagesPerCell);
      counts.fill(0);
      let modified = 0;
      let heldHere = 0;
      for (let p = first; p < end; p++) {
        if (local && local.codes[p] !== INVALID) heldHere++;
        const o = map.owner[p]!;
        counts[o === NO_OWNER ? map.nodes : o]!++;
        if (o !== NO_OWNER && map.mirrors[o]!.codes[p] === MODIFIED) modified++;
      }
      let owner = map.nodes;
      for (let n = 0; n <= map.nodes; n++) if (counts[n]! > counts[owner]!) owner = n;
      const share = Math.round((modified / (end - first)) * 8); // 9 shades are plenty
      const key = owner * 16 + share;
      const color = this.color(key, () => cellColor(owner === map.nodes ? null : owner, share / 8));
      const x0 = (cell % g.columns) * cellDev;
      const y0 = Math.floor(cell / g.columns) * cellDev;
      // Pages this tab does not hold ("invalid here") are drawn as a smaller square.
      const inset = local && heldHere * 2 < end - first ? Math.max(1, Math.floor(fillDev / 4)) : 0;
      for (let y = y0 + inset; y < y0 + fillDev - inset; y++) px.fill(color, y * W + x0 + inset, y * W + x0 + fillDev - inset);
      // A group cell with pages of other owners gets a corner in the strongest other owner's
      // colour, so a few pages that moved stay visible when zoomed out.
      let other = -1;
      for (let n = 0; n < map.nodes; n++) if (n !== owner && counts[n]! > 0 && (other < 0 || counts[n]! > counts[other]!)) other = n;
      if (other >= 0) {
        const corner = this.color(-2 - other, () => cellColor(other, 1));
        const c = Math.max(1, Math.floor(fillDev / 2));
        for (let y = y0 + fillDev - c; y < y0 + fillDev; y++) px.fill(corner, y * W + x0 + fillDev - c, y * W + x0 + fillDev);
      }
    }
    ctx.putImageData(img, 0, 0);
    // Outline the hottest pages' cells, so bouncing pages catch the eye.
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = Math.max(1, s);
    for (const page of hotPages) {
      const cell = Math.floor(page / g.pagesPerCell);
      const x0 = (cell % g.columns) * cellDev;
      const y0 = Math.floor(cell / g.columns) * cellDev;
      ctx.strokeRect(x0 + 0.5, y0 + 0.5, fillDev - 1, fillDev - 1);
    }
  }

  /** A packed pixel colour, computed once per key (keys: owner * 16 + shade; -1 background; -2 - n corners). */
  private color(key: number, make: () => Rgb): number {
    let c = this.colors.get(key);
    if (c === undefined) this.colors.set(key, (c = rgba32(make())));
    return c;
  }

  private renderLegend(): void {
    const { entries, hidden } = legendEntries(this.model);
    const items = entries.map(({ node: n, pages, tab, online }) => {
      const item = el("span", "lv-legend-item");
      item.dataset.node = String(n);
      if (!online) item.classList.add("lv-legend-offline");
      const sw = el("i", "lv-swatch");
      sw.style.background = nodeColor(n);
      item.append(sw, `node ${n}${tab !== null ? ` (tab ${tab})` : online ? "" : " (offline)"}: ${pages} pages`);
      return item;
    });
    if (hidden) items.push(Object.assign(el("span", "lv-legend-item lv-muted"), { textContent: `${hidden} offline node${hidden > 1 ? "s" : ""}, no pages` }));
    const shade = el("span", "lv-legend-item lv-muted");
    shade.textContent =
      "bright: modified · dim: shared copies exist · corner: some pages elsewhere · outlined: hot" +
      (this.localNode !== null ? ` · small: invalid here (node ${this.localNode})` : "");
    const image = this.model.symbols?.imagePages();
    const kernel = el("span", "lv-legend-item lv-muted");
    if (image) kernel.textContent = `kernel image: pages ${hex(image.first)}–${hex(image.last)} (hover names its symbols)`;
    this.legend.replaceChildren(...items, shade, ...(image ? [kernel] : []));
  }

  private showTooltip(x: number, y: number): void {
    this.refreshTooltipText();
    if (this.tooltip.hidden) return;
    const w = this.root.clientWidth;
    this.tooltip.style.left = `${Math.min(x + 14, Math.max(0, w - 260))}px`;
    this.tooltip.style.top = `${y + 16}px`;
  }

  private refreshTooltipText(): void {
    const g = this.layout;
    const map = this.model.pageMap;
    if (!g || !map || !this.hover) return;
    const hit = cellAt(g, this.hover.x, this.hover.y);
    if (!hit) {
      this.tooltip.hidden = true;
      return;
    }
    this.tooltip.hidden = false;
    const lines: string[] = [];
    if (hit.end - hit.first === 1) {
      const info = map.info(hit.first);
      lines.push(`page ${hex(hit.first)} · phys ${hex(hit.first * PAGE_SIZE, 8)}`);
      lines.push(info.owner === null ? "owner: changing hands" : `owner: node ${info.owner} (${info.states[info.owner]})`);
      lines.push(`copies at: ${info.holders.map((n) => `node ${n}`).join(", ") || "none"}`);
      const here = this.localNode;
      if (here !== null && here < info.states.length) lines.push(`this tab (node ${here}): ${info.states[here] === "invalid" ? "invalid here (a fault would fetch it)" : info.states[here]}`);
      const moves = this.model.hot.movesOf(hit.first);
      if (moves) lines.push(`moved ${moves}× in the last ${Math.round(this.model.hot.windowMs / 1000)} s`);
    } else {
      lines.push(`pages ${hex(hit.first)}–${hex(hit.end - 1)} · phys ${hex(hit.first * PAGE_SIZE, 8)}`);
      const owners = new Map<string, number>();
      for (let p = hit.first; p < hit.end; p++) {
        const o = map.owner[p]!;
        const k = o === NO_OWNER ? "changing" : `node ${o}`;
        owners.set(k, (owners.get(k) ?? 0) + 1);
      }
      lines.push("owners: " + [...owners].map(([k, c]) => `${k} ×${c}`).join(", "));
    }
    const syms = this.model.describePage(hit.first, 6);
    if (syms) lines.push(`kernel: ${syms}`);
    this.tooltip.textContent = lines.join("\n");
  }
}

/**
 * The legend's nodes: those online, and any other that still owns pages (none should, once the
 * view hears it went: its pages went back to node 0). `hidden` counts the offline ones left out.
 */
export function legendEntries(model: LiveModel): { entries: { node: number; pages: number; tab: number | null; online: boolean }[]; hidden: number } {
  const map = model.pageMap;
  if (!map) return { entries: [], hidden: 0 };
  const entries: { node: number; pages: number; tab: number | null; online: boolean }[] = [];
  let hidden = 0;
  map.ownedCounts().forEach((pages, node) => {
    const online = model.online(node);
    if (online || pages > 0) entries.push({ node, pages, tab: model.tabOf(node), online });
    else hidden++;
  });
  return { entries, hidden };
}

function el(tag: string, className: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = className;
  return e;
}
