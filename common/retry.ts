/**
 * The wait before the next try of something that failed for a passing
 * reason (a master restarting, a store away), with full jitter: a uniform
 * draw in [0, cap], the cap doubling from `baseMs` up to `maxMs`. Without
 * the draw, every worker a restarting master lost retries in the same
 * instants and meets it as one herd.
 *
 * A delay, not a loop: each caller stops on its own terms (a deadline, a
 * refusal waiting cannot change) and logs in its own words.
 */
export interface BackoffOptions {
  /** Cap of the first wait (attempt 0), in ms. */
  baseMs: number;
  /** Largest cap, reached by doubling; later tries keep it. */
  maxMs: number;
  /** Source of randomness in [0, 1); Math.random unless a test injects one. */
  random?: () => number;
}

/** The cap of the wait after try number `attempt` (0-based): baseMs · 2^attempt, at most maxMs. */
export function backoffCap(attempt: number, options: Omit<BackoffOptions, 'random'>): number {
  // Past 2^31 the product is past any sane maxMs; stop doubling before it overflows to Infinity.
  const doublings = Math.min(Math.max(0, attempt), 31);
  return Math.min(options.maxMs, options.baseMs * 2 ** doublings);
}

/** A wait in [0, backoffCap(attempt)], whole ms. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const cap = backoffCap(attempt, options);
  const draw = (options.random ?? Math.random)();
  return Math.min(cap, Math.floor(draw * (cap + 1)));
}
