/**
 * What the master sees of its workers, sampled: `GET /api/workers` every
 * `everyMs`, checked against its schema in proto/, reduced to how many are
 * online and how busy they are. Worker-seconds are the integral of that
 * step function over a window.
 */
import { workersResponseSchema } from '../proto/src/schemas/metrics.ts';

export interface Sample {
  /** performance.now() when the answer arrived. */
  at: number;
  online: number;
  /** Tasks running on the online workers. */
  active: number;
  /** Slots of the online workers. */
  slots: number;
}

const REQUEST_TIMEOUT_MS = 2_000;

export class FleetSampler {
  readonly samples: Sample[] = [];
  /** Requests that failed or answered something unexpected; their samples are missing. */
  misses = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly baseUrl: string,
    private readonly everyMs: number,
  ) {}

  /** Takes one sample now, then one every `everyMs` until stop(). */
  async start(): Promise<void> {
    await this.sampleOnce();
    this.loop = (async () => {
      while (!this.stopped) {
        const next = performance.now() + this.everyMs;
        await this.sampleOnce();
        const wait = next - performance.now();
        if (wait > 0 && !this.stopped) await new Promise((r) => setTimeout(r, wait));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.wakeAll();
  }

  latest(): Sample | undefined {
    return this.samples.at(-1);
  }

  /**
   * Resolves with the first sample from now on for which `test` holds (also
   * given the sample), or undefined once `timeoutMs` passed or sampling stopped.
   */
  async waitFor(
    test: (s: Sample) => boolean | Promise<boolean>,
    timeoutMs: number,
  ): Promise<Sample | undefined> {
    const deadline = performance.now() + timeoutMs;
    let seen = this.samples.length;
    for (;;) {
      for (; seen < this.samples.length; seen++) {
        const s = this.samples[seen] as Sample;
        if (await test(s)) return s;
      }
      const left = deadline - performance.now();
      if (this.stopped || left <= 0) return undefined;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      });
      await Promise.race([new Promise<void>((resolve) => this.waiters.add(resolve)), timeout]);
      clearTimeout(timer);
    }
  }

  private async sampleOnce(): Promise<void> {
    try {
      const res = await fetch(`${this.baseUrl}/api/workers`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const parsed = workersResponseSchema.safeParse(await res.json());
      if (!parsed.success) {
        this.misses++;
        return;
      }
      const online = parsed.data.workers.filter((w) => w.state === 'online');
      this.samples.push({
        at: performance.now(),
        online: online.length,
        active: online.reduce((sum, w) => sum + w.active, 0),
        slots: online.reduce((sum, w) => sum + w.slots, 0),
      });
    } catch {
      this.misses++;
      return;
    }
    this.wakeAll();
  }

  private wakeAll(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }
}

/**
 * ∫ online dt over [from, to], in worker-seconds: each sample's count holds
 * until the next one (the last one until `to`); before the first sample the
 * fleet counts as the first sample's.
 */
export function workerSeconds(samples: readonly Sample[], from: number, to: number): number {
  if (to <= from || samples.length === 0) return 0;
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i] as Sample;
    const start = i === 0 ? Number.NEGATIVE_INFINITY : s.at;
    const end = samples[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    const overlap = Math.min(end, to) - Math.max(start, from);
    if (overlap > 0) total += s.online * overlap;
  }
  return total / 1000;
}

/** The first sample at or after `from` passing `test`. */
export function firstSample(
  samples: readonly Sample[],
  from: number,
  test: (s: Sample) => boolean,
): Sample | undefined {
  return samples.find((s) => s.at >= from && test(s));
}
