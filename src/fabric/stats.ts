// Round-trip samples of one link, kept in a ring, summarised as percentiles for the live view.

export class RttStats {
  private readonly samples: number[] = [];
  private next = 0;
  last: number | undefined;

  constructor(private readonly capacity = 64) {}

  add(ms: number): void {
    this.last = ms;
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
  }

  get count(): number {
    return this.samples.length;
  }

  percentile(p: number): number | undefined {
    return percentile(this.samples, p);
  }
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; undefined when there are none. */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in 0..100`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}
