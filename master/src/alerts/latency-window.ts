/**
 * Latencies over a sliding window of seconds, as counts in geometric buckets
 * (each 5 % wider than the last, 1 ms to about 3 days): a task costs one
 * increment, a second that leaves the window one subtraction per bucket it
 * used, and a quantile one pass over the buckets, however many tasks there
 * were. A quantile is the upper bound of its bucket, at most 5 % high.
 */

const GROWTH = 1.05;
const BUCKETS = 400;
const SECOND_MS = 1_000;

const bucketOf = (ms: number) =>
  ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms) / Math.log(GROWTH)));

interface Second {
  at: number;
  counts: Map<number, number>;
}

export class LatencyWindow {
  private readonly totals = new Array<number>(BUCKETS).fill(0);
  private total = 0;
  /** Oldest first. */
  private readonly seconds: Second[] = [];

  constructor(private readonly windowMs: number) {}

  add(ms: number, now: number): void {
    const at = Math.floor(now / SECOND_MS) * SECOND_MS;
    let last = this.seconds.at(-1);
    if (!last || last.at !== at) {
      last = { at, counts: new Map() };
      this.seconds.push(last);
    }
    const bucket = bucketOf(ms);
    last.counts.set(bucket, (last.counts.get(bucket) ?? 0) + 1);
    this.totals[bucket] = (this.totals[bucket] ?? 0) + 1;
    this.total += 1;
  }

  /** How many latencies the window holds at `now`. */
  count(now: number): number {
    this.expire(now);
    return this.total;
  }

  /** The q-quantile at `now`, undefined when the window is empty. */
  quantile(q: number, now: number): number | undefined {
    this.expire(now);
    if (this.total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.totals[bucket] ?? 0;
      if (seen >= rank) return GROWTH ** bucket;
    }
    return GROWTH ** (BUCKETS - 1);
  }

  private expire(now: number): void {
    const oldest = now - this.windowMs;
    while (this.seconds.length > 0 && (this.seconds[0] as Second).at + SECOND_MS <= oldest) {
      const gone = this.seconds.shift() as Second;
      for (const [bucket, n] of gone.counts) {
        this.totals[bucket] = (this.totals[bucket] ?? 0) - n;
        this.total -= n;
      }
    }
  }
}
