// Node-side helpers for the two optional reports the view understands beyond the protocol's stats
// snapshot: cumulative IPI counts per (sender, receiver, kind), and the pages a node sent since
// its last report. Plain integers in maps, cheap enough to update on every IPI and every grant;
// a node turns them into ViewInputs when it sends its snapshot (a few times a second).

import type { IpiCount, IpiKind, PageMove, ViewInput } from "./inputs.ts";

export class IpiCountCollector {
  private readonly counts = new Map<string, IpiCount>();

  count(src: number, dest: number, kind: IpiKind): void {
    const key = `${src}>${dest}>${kind}`;
    const c = this.counts.get(key);
    if (c) c.count++;
    else this.counts.set(key, { src, dest, kind, count: 1 });
  }

  /** The cumulative report (never reset: duplicates and losses are harmless). */
  report(node: number): Extract<ViewInput, { kind: "ipi-counts" }> {
    return { kind: "ipi-counts", node, counts: [...this.counts.values()].map((c) => ({ ...c })) };
  }
}

export class PageMoveCollector {
  private moves = new Map<number, PageMove>();
  private seq = 0;

  /** Only the `limit` most-moved pages are reported (the hot list shows a handful). */
  constructor(private readonly limit = 64) {}

  /** This node sent (granted) `page` to node `to`. */
  sent(page: number, to: number): void {
    const key = page * 256 + to; // node ids are one byte
    const m = this.moves.get(key);
    if (m) m.count++;
    else this.moves.set(key, { page, to, count: 1 });
  }

  /** The moves since the previous call, most-moved first, as a report numbered by `seq`. */
  take(node: number, receivedMs: number): Extract<ViewInput, { kind: "page-moves" }> {
    const moves = [...this.moves.values()].sort((a, b) => b.count - a.count || a.page - b.page).slice(0, this.limit);
    this.moves = new Map();
    return { kind: "page-moves", node, seq: ++this.seq, receivedMs, moves };
  }
}
