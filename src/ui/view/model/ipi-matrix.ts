// The IPI matrix: how many interrupts each CPU sent to each CPU, by kind. Every node reports the
// cumulative counts of what its vCPUs sent; the matrix keeps each node's latest report and sums
// them, so duplicated or repeated reports never double-count. A report whose counts went down
// (the node restarted) simply replaces the old one.

import type { IpiCount, IpiKind } from "../../../protocol/telemetry/inputs.ts";

export interface MatrixCell {
  src: number;
  dest: number;
  total: number;
  byKind: Partial<Record<IpiKind, number>>;
}

export class IpiMatrix {
  private readonly reports = new Map<number, IpiCount[]>();
  generation = 0;

  /** Replaces node `node`'s cumulative counts. */
  report(node: number, counts: readonly IpiCount[]): void {
    this.reports.set(node, counts.map((c) => ({ ...c })));
    this.generation++;
  }

  /** Cells with a non-zero total, sorted by sender then receiver. */
  cells(): MatrixCell[] {
    const map = new Map<string, MatrixCell>();
    for (const counts of this.reports.values())
      for (const c of counts) {
        if (c.count === 0) continue;
        const key = `${c.src}>${c.dest}`;
        let cell = map.get(key);
        if (!cell) map.set(key, (cell = { src: c.src, dest: c.dest, total: 0, byKind: {} }));
        cell.total += c.count;
        cell.byKind[c.kind] = (cell.byKind[c.kind] ?? 0) + c.count;
      }
    return [...map.values()].sort((a, b) => a.src - b.src || a.dest - b.dest);
  }

  /** Count from `src` to `dest`, of one kind or all kinds. */
  count(src: number, dest: number, kind?: IpiKind): number {
    const cell = this.cells().find((c) => c.src === src && c.dest === dest);
    if (!cell) return 0;
    return kind ? (cell.byKind[kind] ?? 0) : cell.total;
  }

  clear(): void {
    this.reports.clear();
    this.generation++;
  }
}
