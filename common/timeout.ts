/**
 * Bounding a wait. Every "give up on this after N ms" in flota goes through
 * here, so the timer is always cleared, whichever side wins.
 *
 * Not `AbortSignal.timeout`: its timer is Node's own, which fake timers do
 * not move, and half of these waits are tested with fake timers.
 */

/** The two timer calls a bounded wait needs. Default: the global timers. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(handle: NodeJS.Timeout): void;
}

/** Looked up at each call, so fake timers installed after import still apply. */
const globalTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle),
};

const LATE: unique symbol = Symbol('late');

/** Settles like `work`, or resolves LATE once `ms` have passed first. */
async function raceTimer<T>(
  work: Promise<T>,
  ms: number,
  timers: Timers,
): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = timers.setTimeout(() => resolve(LATE), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    if (timer !== undefined) timers.clearTimeout(timer);
  }
}

/**
 * Settles like `work`, or rejects with `timeoutError()` when `work` has not
 * settled within `ms`. `work` itself runs on: the caller decides what a late
 * outcome means.
 */
export async function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  timeoutError: () => Error,
  timers: Timers = globalTimers,
): Promise<T> {
  const outcome = await raceTimer(work, ms, timers);
  if (outcome === LATE) throw timeoutError();
  return outcome;
}

/**
 * True when `work` fulfilled within `ms`, false when the time ran out first;
 * a rejection of `work` within the time rejects this too.
 */
export async function finishesWithin(
  work: Promise<unknown>,
  ms: number,
  timers: Timers = globalTimers,
): Promise<boolean> {
  return (await raceTimer(work, ms, timers)) !== LATE;
}

/** True when `work` settled either way within `ms`, false when the time ran out first; never rejects. */
export function settlesWithin(
  work: Promise<unknown>,
  ms: number,
  timers: Timers = globalTimers,
): Promise<boolean> {
  const settled = work.then(
    () => undefined,
    () => undefined,
  );
  return finishesWithin(settled, ms, timers);
}
