/**
 * How load is offered: as much as the system takes (bounded in-flight,
 * pipelined), or at a fixed rate (open loop, evenly spaced submissions).
 * Both fail loudly when results stop arriving instead of hanging.
 */
import type { LoadClient, Outcome, Stages } from './load.ts';

export interface ThroughputResult {
  tasks: number;
  failed: number;
  seconds: number;
  tasksPerSec: number;
}

export interface LatencyResult {
  samples: number;
  failed: number;
  offeredPerSec: number;
  achievedPerSec: number;
  /** Client-side submit → result. */
  latencyMs: Percentiles;
  /** The master's submitted → committed, from the task timings. */
  serverTotalMs: Percentiles;
  /**
   * Medians of where the time went: the stages of the task timings, plus
   * `client` = client latency − the master's total (the submit request before
   * the task was stamped, and the result's way back to the socket).
   */
  stagesP50Ms: Stages & { client: number };
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles, rounded to 0.01 ms. */
export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => {
    if (sorted.length === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return round2(sorted[rank - 1] as number);
  };
  return { p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

export const round2 = (n: number) => Math.round(n * 100) / 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects when `progress()` has not moved for `stallMs`; otherwise settles with `work`. */
export async function guarded<T>(
  work: Promise<T>,
  progress: () => number,
  stallMs: number,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    let last = progress();
    let since = performance.now();
    timer = setInterval(() => {
      const now = progress();
      if (now !== last) {
        last = now;
        since = performance.now();
      } else if (performance.now() - since > stallMs) {
        reject(new Error(`no result for ${stallMs} ms (${now} finished so far)`));
      }
    }, 250);
  });
  try {
    return await Promise.race([work, stalled]);
  } finally {
    clearInterval(timer);
  }
}

export interface ThroughputOptions {
  tasks: number;
  /** Stop offering new tasks after this many seconds (the outstanding ones still finish). */
  maxSeconds?: number;
  inflight: number;
  label: string;
  stallMs: number;
  onProgress?: (done: number) => void;
}

/**
 * Keeps `inflight` tasks outstanding until `tasks` finished (or `maxSeconds`
 * passed); completions per second.
 */
export async function runThroughput(
  client: LoadClient,
  opts: ThroughputOptions,
): Promise<ThroughputResult> {
  let next = 0;
  let done = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + (opts.maxSeconds ?? Number.POSITIVE_INFINITY) * 1000;
  const lane = async () => {
    while (next < opts.tasks && performance.now() < deadline) {
      const i = next++;
      const outcome = await client.task(`${opts.label} ${i}`);
      done++;
      if (!outcome.completed) failed++;
      opts.onProgress?.(done);
    }
  };
  const lanes = Array.from({ length: Math.min(opts.inflight, opts.tasks) }, lane);
  await guarded(Promise.all(lanes), () => done, opts.stallMs);
  const seconds = (performance.now() - started) / 1000;
  return { tasks: done, failed, seconds, tasksPerSec: done / seconds };
}

export interface FixedRateOptions {
  tasks: number;
  ratePerSec: number;
  label: string;
  stallMs: number;
  onProgress?: (done: number) => void;
}

/** Submits evenly spaced at `ratePerSec` whatever the answers do; per-task latency. */
export async function runFixedRate(
  client: LoadClient,
  opts: FixedRateOptions,
): Promise<LatencyResult> {
  const interval = 1000 / opts.ratePerSec;
  const pending: Array<Promise<Outcome>> = [];
  let done = 0;
  const started = performance.now();
  let lastSubmit = started;
  const submitAll = async () => {
    for (let i = 0; i < opts.tasks; i++) {
      const wait = started + i * interval - performance.now();
      if (wait >= 1) await sleep(wait);
      lastSubmit = performance.now();
      pending.push(
        client.task(`${opts.label} ${i}`).then((outcome) => {
          done++;
          opts.onProgress?.(done);
          return outcome;
        }),
      );
    }
    return Promise.all(pending);
  };
  const outcomes = await guarded(submitAll(), () => done + pending.length, opts.stallMs);
  const spanSec = (lastSubmit - started) / 1000;
  const achieved = spanSec > 0 ? (opts.tasks - 1) / spanSec : opts.ratePerSec;
  return summarize(outcomes, opts.ratePerSec, achieved);
}

export interface SoloOptions {
  tasks: number;
  label: string;
  stallMs: number;
  onProgress?: (done: number) => void;
}

/**
 * One task at a time, each submitted once the previous one's answer came:
 * the latency of a task alone, with nothing else in the system.
 */
export async function runSolo(client: LoadClient, opts: SoloOptions): Promise<LatencyResult> {
  const outcomes: Outcome[] = [];
  const started = performance.now();
  const one = async () => {
    for (let i = 0; i < opts.tasks; i++) {
      outcomes.push(await client.task(`${opts.label} ${i}`));
      opts.onProgress?.(outcomes.length);
    }
    return outcomes;
  };
  await guarded(one(), () => outcomes.length, opts.stallMs);
  const rate = opts.tasks / Math.max((performance.now() - started) / 1000, 1e-3);
  return summarize(outcomes, rate, rate);
}

function summarize(outcomes: Outcome[], offered: number, achieved: number): LatencyResult {
  const completed = outcomes.filter((o) => o.completed);
  return {
    samples: outcomes.length,
    failed: outcomes.length - completed.length,
    offeredPerSec: round2(offered),
    achievedPerSec: round2(achieved),
    latencyMs: percentiles(completed.map((o) => o.latencyMs)),
    serverTotalMs: percentiles(
      completed.flatMap((o) => (o.serverTotalMs === undefined ? [] : [o.serverTotalMs])),
    ),
    stagesP50Ms: stageMedians(completed),
  };
}

function stageMedians(outcomes: Outcome[]): Stages & { client: number } {
  const p50 = (pick: (o: Outcome) => number | undefined) =>
    percentiles(outcomes.flatMap((o) => (pick(o) === undefined ? [] : [pick(o) as number]))).p50;
  return {
    queue: p50((o) => o.stages?.queue),
    dispatch: p50((o) => o.stages?.dispatch),
    processing: p50((o) => o.stages?.processing),
    commit: p50((o) => o.stages?.commit),
    client: p50((o) => (o.serverTotalMs === undefined ? undefined : o.latencyMs - o.serverTotalMs)),
  };
}
