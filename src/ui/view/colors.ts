// Colours of the live view, in one place: one hue per node (used by the page map, the node cards
// and the plots' per-node series), and how a page's state shades its owner's hue. Pure functions.

/** Distinct, colour-blind-friendly-ish hues on a dark background (Okabe-Ito based), node 0 first. */
export const NODE_COLORS: readonly string[] = [
  "#4e9cf5", // node 0: blue (the host, devices)
  "#f5a524", // orange
  "#3fcf8e", // green
  "#e05cb0", // pink
  "#f0e442", // yellow
  "#9b7cf6", // violet
  "#56c7e8", // sky
  "#e8684a", // vermilion
];
export const NO_OWNER_COLOR = "#59616b";
export const BACKGROUND = "#11161c";

export function nodeColor(node: number): string {
  return NODE_COLORS[node % NODE_COLORS.length]!;
}

export type Rgb = [number, number, number];

export function parseHex(color: string): Rgb {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) throw new Error(`colour ${color} is not #rrggbb`);
  const v = parseInt(m[1]!, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** `a` mixed towards `b` by `t` (0 = a, 1 = b). */
export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * t)) as Rgb;
}

/**
 * A page map cell's colour: the owner's hue, full for pages modified at the owner (one copy,
 * writable), dimmed when the owner only holds it shared (read copies exist elsewhere); grey
 * while the owner is unknown. `modifiedShare` is the fraction of the cell's pages that are
 * modified (cells may group several pages).
 */
export function cellColor(owner: number | null, modifiedShare: number): Rgb {
  if (owner === null) return parseHex(NO_OWNER_COLOR);
  return mix(parseHex(BACKGROUND), parseHex(nodeColor(owner)), 0.45 + 0.55 * Math.min(1, Math.max(0, modifiedShare)));
}

/** Little-endian RGBA as one u32 for ImageData writes. */
export function rgba32([r, g, b]: Rgb, a = 255): number {
  return ((a << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

export const VCPU_STATE_COLORS = {
  running: "#3fcf8e",
  halted: "#6e7781",
  "waiting-page": "#f5a524",
  "waiting-io": "#56c7e8",
  "waiting-sipi": "#454c55",
  stopped: "#454c55",
} as const;

export const VCPU_STATE_LABELS = {
  running: "running",
  halted: "halted",
  "waiting-page": "waiting for a page",
  "waiting-io": "waiting for I/O",
  "waiting-sipi": "waiting for SIPI",
  stopped: "stopped",
} as const;

/** 12345678 -> "12.3 M", 950 -> "950", for rates and counts in small spaces. */
export function shortNumber(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(a >= 1e10 ? 0 : 1)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(0)} k`;
  if (a >= 100 || Number.isInteger(n)) return `${Math.round(n)}`;
  return n.toFixed(1);
}

export const hex = (n: number, digits = 0) => `0x${n.toString(16).padStart(digits, "0")}`;
