/**
 * The latencies of one second, bounded: past MAX_SAMPLES each new one
 * replaces a random kept one (reservoir sampling), so a busy second costs a
 * fixed amount of memory and its quantiles stay unbiased.
 */

/** Samples one second keeps at most. */
export const MAX_SAMPLES = 1_000;

export class LatencySamples {
  private readonly kept: number[] = [];
  private seen = 0;

  constructor(
    private readonly max = MAX_SAMPLES,
    private readonly random: () => number = Math.random,
  ) {}

  add(ms: number): void {
    this.seen += 1;
    if (this.kept.length < this.max) {
      this.kept.push(ms);
      return;
    }
    const slot = Math.floor(this.random() * this.seen);
    if (slot < this.max) this.kept[slot] = ms;
  }

  values(): readonly number[] {
    return this.kept;
  }
}

/** The q-quantile (nearest rank) of ascending values; undefined for none. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}
