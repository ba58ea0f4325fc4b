/**
 * A bounded load run for the Test panel: `count` tasks, at most
 * `concurrency` outstanding, each followed to its end; and the statistics
 * of its latencies (percentiles, a histogram). No DOM here.
 */

/** Polling a task starts this fast and slows by POLL_GROWTH up to POLL_MAX_MS. */
const POLL_FIRST_MS = 100;
const POLL_GROWTH = 1.5;
const POLL_MAX_MS = 2_000;
/** A refused submission (429 rate or queue limit, 503) is tried again after this, doubling. */
const BUSY_FIRST_MS = 500;
const BUSY_MAX_MS = 10_000;
/** One task is given up on after this long (the master's own timeout normally ends it first). */
const FOLLOW_LIMIT_MS = 10 * 60_000;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/**
 * @typedef {object} Outcome
 * @property {string} [id]
 * @property {boolean} ok completed
 * @property {number} [latencyMs] submission → result as the master measured it (else as seen here)
 * @property {string} [error]
 */

/**
 * @param {object} options
 * @param {ReturnType<typeof import('./api.js').createApi>} options.api
 * @param {Record<string, unknown>} options.task the body of each `POST /api/tasks`
 * @param {number} options.count
 * @param {number} options.concurrency
 * @param {AbortSignal} options.signal stops submitting and following
 * @param {(progress: { submitted: number, done: number, failed: number }) => void} options.onProgress
 * @param {(id: string) => void} [options.onSubmitted]
 * @returns {Promise<Outcome[]>} one per task finished (fewer when stopped)
 */
export async function runLoad({ api, task, count, concurrency, signal, onProgress, onSubmitted }) {
  /** @type {Outcome[]} */
  const outcomes = [];
  let next = 0;
  let submitted = 0;
  let failed = 0;
  const report = () => onProgress({ submitted, done: outcomes.length, failed });

  async function one() {
    const started = Date.now();
    /** @type {string | undefined} */
    let id;
    try {
      id = await submit(api, task, signal);
      submitted += 1;
      onSubmitted?.(id);
      report();
      const view = await follow(api, id, signal);
      const latencyMs = view.timings?.totalMs ?? Date.now() - started;
      const ok = view.state === 'completed';
      return { id, ok, latencyMs, error: ok ? undefined : (view.error ?? view.state) };
    } catch (err) {
      if (signal.aborted) return undefined;
      return { id, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }

  async function lane() {
    while (next < count && !signal.aborted) {
      next += 1;
      const outcome = await one();
      if (!outcome) return;
      outcomes.push(outcome);
      if (!outcome.ok) failed += 1;
      report();
    }
  }

  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return outcomes;
}

/**
 * @param {ReturnType<typeof import('./api.js').createApi>} api
 * @param {Record<string, unknown>} task @param {AbortSignal} signal
 * @returns {Promise<string>}
 */
async function submit(api, task, signal) {
  let wait = BUSY_FIRST_MS;
  for (;;) {
    try {
      const { id } = await api.send('POST', '/api/tasks', task);
      return id;
    } catch (err) {
      const status = /** @type {{ status?: number }} */ (err).status;
      if (status !== 429 && status !== 503) throw err;
      await sleep(wait * (0.75 + Math.random() / 2), signal);
      wait = Math.min(wait * 2, BUSY_MAX_MS);
    }
  }
}

/**
 * Polls the task until it has finished; slows down as it waits.
 * @param {ReturnType<typeof import('./api.js').createApi>} api
 * @param {string} id @param {AbortSignal} signal
 */
async function follow(api, id, signal) {
  const deadline = Date.now() + FOLLOW_LIMIT_MS;
  let wait = POLL_FIRST_MS;
  for (;;) {
    await sleep(wait, signal);
    try {
      const view = await api.get(`/api/tasks/${encodeURIComponent(id)}`);
      if (FINISHED.has(view.state)) return view;
    } catch (err) {
      const status = /** @type {{ status?: number }} */ (err).status;
      if (status !== 429 && status !== 503) throw err;
    }
    if (Date.now() > deadline) throw new Error('gave up waiting for the task');
    wait = Math.min(wait * POLL_GROWTH, POLL_MAX_MS);
  }
}

/** @param {number} ms @param {AbortSignal} signal */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve(undefined);
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}

/**
 * Nearest-rank percentiles, mean and max of `values` (ms).
 * @param {number[]} values
 */
export function latencyStats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (/** @type {number} */ p) =>
    sorted.length
      ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
      : undefined;
  return {
    count: sorted.length,
    min: sorted[0],
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted[sorted.length - 1],
    mean: sorted.length ? sorted.reduce((s, v) => s + v, 0) / sorted.length : undefined,
  };
}

/**
 * `bins` equal-width buckets from the least to the greatest value.
 * @param {number[]} values @param {number} bins
 * @returns {Array<{ from: number, to: number, count: number }>}
 */
export function histogram(values, bins) {
  if (values.length === 0) return [];
  const min = Math.min(...values);
  const max = Math.max(...values);
  const width = (max - min) / bins || 1;
  const buckets = Array.from({ length: bins }, (_, i) => ({
    from: min + i * width,
    to: min + (i + 1) * width,
    count: 0,
  }));
  for (const v of values) {
    const i = Math.min(bins - 1, Math.floor((v - min) / width));
    const bucket = buckets[i];
    if (bucket) bucket.count += 1;
  }
  return max === min ? buckets.slice(0, 1) : buckets;
}
