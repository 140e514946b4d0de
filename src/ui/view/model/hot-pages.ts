// "Hot pages": the pages that moved most in the last N seconds, and between which nodes. Fed with
// page arrivals (from the page map) stamped with the viewer's clock; a sliding window of events,
// bounded so that a storm of moves cannot make the view grow without limit.

export interface HotPage {
  page: number;
  moves: number;
  /** Nodes the page arrived at within the window, by node id, with how often. */
  arrivals: Map<number, number>;
}

export class HotPages {
  // Ring of events: parallel arrays, oldest at `head`.
  private readonly times: Float64Array;
  private readonly pages: Uint32Array;
  private readonly nodes: Uint8Array;
  private readonly weights: Uint32Array;
  private head = 0;
  private size = 0;
  private readonly counts = new Map<number, Map<number, number>>();
  /** Events pushed out by the bound before their time was up (reported, so nobody is misled). */
  dropped = 0;

  constructor(
    readonly windowMs = 10_000,
    readonly capacity = 100_000,
  ) {
    if (!(windowMs > 0)) throw new RangeError(`windowMs is ${windowMs}, expected > 0`);
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity is ${capacity}, expected a positive integer`);
    this.times = new Float64Array(capacity);
    this.pages = new Uint32Array(capacity);
    this.nodes = new Uint8Array(capacity);
    this.weights = new Uint32Array(capacity);
  }

  /** `page` arrived at `node` (`count` times) at `atMs`. */
  record(page: number, node: number, atMs: number, count = 1): void {
    if (this.size === this.capacity) {
      this.dropOldest();
      this.dropped++;
    }
    const i = (this.head + this.size) % this.capacity;
    this.times[i] = atMs;
    this.pages[i] = page;
    this.nodes[i] = node;
    this.weights[i] = count;
    this.size++;
    let perNode = this.counts.get(page);
    if (!perNode) this.counts.set(page, (perNode = new Map()));
    perNode.set(node, (perNode.get(node) ?? 0) + count);
  }

  /** Forgets events older than the window. */
  expire(nowMs: number): void {
    while (this.size > 0 && this.times[this.head]! < nowMs - this.windowMs) this.dropOldest();
  }

  /** The `k` pages with the most moves in the window (ties: lower page first). */
  top(k: number, nowMs: number): HotPage[] {
    this.expire(nowMs);
    const all: HotPage[] = [];
    for (const [page, arrivals] of this.counts) {
      let moves = 0;
      for (const c of arrivals.values()) moves += c;
      all.push({ page, moves, arrivals: new Map(arrivals) });
    }
    all.sort((a, b) => b.moves - a.moves || a.page - b.page);
    return all.slice(0, k);
  }

  /** Moves of one page within the window. */
  movesOf(page: number): number {
    let moves = 0;
    for (const c of this.counts.get(page)?.values() ?? []) moves += c;
    return moves;
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
    this.counts.clear();
    this.dropped = 0;
  }

  /** Events (records) held in the window. */
  get events(): number {
    return this.size;
  }

  private dropOldest(): void {
    const page = this.pages[this.head]!;
    const node = this.nodes[this.head]!;
    const perNode = this.counts.get(page)!;
    const c = perNode.get(node)! - this.weights[this.head]!;
    if (c === 0) perNode.delete(node);
    else perNode.set(node, c);
    if (perNode.size === 0) this.counts.delete(page);
    this.head = (this.head + 1) % this.capacity;
    this.size--;
  }
}
