/**
 * The floor: plain BullMQ on the same Redis, with no flota in between.
 * `Queue.addBulk` in batches while a `Worker` with a trivial processor and
 * the fleet's concurrency takes them; jobs per second from the first add to
 * the last completion, after a short warm-up; the median of a few runs. Jobs carry the options flota's own jobs carry.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

export interface RawBullmqOptions {
  redisUrl: string;
  jobs: number;
  concurrency: number;
  /** Jobs per addBulk call. */
  batch: number;
  /** Timed runs of `jobs` each; the median counts (the machine may be shared). */
  runs: number;
  onProgress?: (done: number) => void;
}

export interface RawBullmqResult {
  /** Median over the runs. */
  jobsPerSec: number;
  /** Every run's jobs/s. */
  samples: number[];
  jobs: number;
  concurrency: number;
}

const WARMUP_JOBS = 200;
const JOB_OPTS = {
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export async function runRawBullmq(opts: RawBullmqOptions): Promise<RawBullmqResult> {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const prefix = `bench_raw_${randomBytes(4).toString('hex')}`;
  const name = 'raw';
  const queue = new Queue(name, { connection, prefix });
  let completed = 0;
  let target = 0;
  let onTarget: () => void = () => {};
  const worker = new Worker(name, async (job) => ({ echoed: job.data.prompt }), {
    connection,
    prefix,
    concurrency: opts.concurrency,
    autorun: false,
  });
  worker.on('completed', () => {
    completed++;
    if (completed === target) onTarget();
  });
  /** Adds `jobs` jobs in addBulk batches; resolves once all of them completed. */
  const pump = async (jobs: number, report?: (done: number) => void) => {
    const base = completed;
    target = base + jobs;
    const reached = new Promise<void>((resolve) => {
      onTarget = resolve;
    });
    const progress = report && setInterval(() => report(completed - base), 100);
    try {
      for (let first = 0; first < jobs; first += opts.batch) {
        const count = Math.min(opts.batch, jobs - first);
        await queue.addBulk(
          Array.from({ length: count }, (_, i) => ({
            name: 'task',
            data: { prompt: `raw ${first + i}` },
            opts: JOB_OPTS,
          })),
        );
      }
      await reached;
    } finally {
      clearInterval(progress);
    }
  };
  try {
    await queue.waitUntilReady();
    await worker.waitUntilReady();
    void worker.run();
    // Scripts loaded, connections warm, JIT done: then measure.
    await pump(Math.min(WARMUP_JOBS, opts.jobs));
    const samples: number[] = [];
    for (let run = 0; run < opts.runs; run++) {
      const started = performance.now();
      await pump(opts.jobs, (done) => opts.onProgress?.(run * opts.jobs + done));
      samples.push(opts.jobs / ((performance.now() - started) / 1000));
    }
    const sorted = [...samples].sort((a, b) => a - b);
    return {
      jobsPerSec: sorted[Math.floor((sorted.length - 1) / 2)] as number,
      samples: samples.map((n) => Math.round(n)),
      jobs: opts.jobs,
      concurrency: opts.concurrency,
    };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}
