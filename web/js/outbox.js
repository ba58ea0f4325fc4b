/**
 * The client's side of the session outbox (see proto/src/socket-events.ts).
 * Every task event carries an `outboxSeq` that only grows within the master's
 * `epoch`; the cursor remembers the last one processed, so a replayed or
 * duplicated event is recognised and skipped. A new epoch (the master
 * restarted) starts the count afresh.
 */

/** @param {unknown} v @returns {v is number} */
const isSeq = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * @param {{ epoch: string, lastSeq: number } | null} saved the position saved with the history
 */
export function createOutboxCursor(saved) {
  /** @type {string | undefined} */
  let epoch = saved?.epoch;
  let lastSeq = saved && isSeq(saved.lastSeq) ? saved.lastSeq : 0;

  return {
    /** What `session:hello` sends as `resume`; nothing before the first greeting. */
    resume() {
      return epoch ? { epoch, lastSeq } : undefined;
    },
    /**
     * The master's epoch from the hello ack; a different one means its outbox
     * numbers start again, so nothing seen before counts. Returns whether it changed.
     * @param {string} next
     */
    greet(next) {
      if (next === epoch) return false;
      epoch = next;
      lastSeq = 0;
      return true;
    },
    /**
     * Whether the event stamped `seq` is new; if so it becomes the last processed.
     * @param {unknown} seq
     */
    accept(seq) {
      if (!isSeq(seq) || seq <= lastSeq) return false;
      lastSeq = seq;
      return true;
    },
    get lastSeq() {
      return lastSeq;
    },
    /** @returns {{ epoch: string, lastSeq: number } | null} */
    snapshot() {
      return epoch ? { epoch, lastSeq } : null;
    },
  };
}

/**
 * Runs `fn` soon after `schedule()`, at most once per `intervalMs`: at once
 * (next task) when it last ran long enough ago, otherwise when the interval
 * is up. A burst of events therefore costs one run per interval, and the
 * last event of a burst is never left waiting longer than the interval.
 * A timer, not requestAnimationFrame, which stops in background tabs.
 * @param {() => void} fn @param {number} intervalMs
 */
export function createThrottle(fn, intervalMs) {
  let timer = 0;
  let lastRun = Number.NEGATIVE_INFINITY;

  function run() {
    window.clearTimeout(timer);
    timer = 0;
    lastRun = performance.now();
    fn();
  }

  return {
    schedule() {
      if (timer) return;
      const wait = Math.max(0, lastRun + intervalMs - performance.now());
      timer = window.setTimeout(run, wait);
    },
    /** Runs now (e.g. when the page is hidden), cancelling a pending run. */
    flush: run,
  };
}
