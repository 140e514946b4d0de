// Fixed-length time series for the plots: one time column and named value columns, in the
// column layout uPlot draws directly ([xs, ys1, ys2, ...]).

export class TimeSeries<K extends string> {
  private readonly t: number[] = [];
  private readonly cols: Map<K, (number | null)[]>;

  constructor(
    readonly keys: readonly K[],
    readonly capacity = 240,
  ) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`capacity is ${capacity}, expected >= 2`);
    this.cols = new Map(keys.map((k) => [k, []]));
  }

  /** Appends a point at `tSec` (must not go back in time); missing keys are gaps. */
  push(tSec: number, values: Partial<Record<K, number | null>>): void {
    const last = this.t[this.t.length - 1];
    if (last !== undefined && tSec < last) throw new RangeError(`time went back from ${last} to ${tSec}`);
    this.t.push(tSec);
    for (const k of this.keys) this.cols.get(k)!.push(values[k] ?? null);
    if (this.t.length > this.capacity) {
      this.t.shift();
      for (const col of this.cols.values()) col.shift();
    }
  }

  /** The same points over `keys`: columns of kept keys come along, new keys are gaps so far. */
  withKeys<J extends string>(keys: readonly J[]): TimeSeries<J> {
    const next = new TimeSeries<J>(keys, this.capacity);
    next.t.push(...this.t);
    for (const k of keys) {
      const old = (this.cols as Map<string, (number | null)[]>).get(k);
      next.cols.set(k, old ? old.slice() : this.t.map(() => null));
    }
    return next;
  }

  get length(): number {
    return this.t.length;
  }

  /** uPlot's data layout: [times, ...one array per key in `keys` order]. */
  data(): [number[], ...(number | null)[][]] {
    return [this.t.slice(), ...this.keys.map((k) => this.cols.get(k)!.slice())];
  }

  latest(key: K): number | null {
    const col = this.cols.get(key)!;
    return col.length ? col[col.length - 1]! : null;
  }
}
