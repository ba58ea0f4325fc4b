/**
 * The live series the operator console draws: one SeriesPoint per second,
 * the last SERIES_SECONDS kept in a ring. Tasks are counted as their events
 * pass (a counter, and a latency pushed into the second's array); the fleet
 * is read from the registry at each tick; queue depths come from one store
 * call a second, never two at once (a slow store makes them a tick late,
 * not piled up).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../../common/logger.ts';
import { SERIES_SECONDS, type SeriesPoint } from '../../../proto/src/schemas/console.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import type { TaskService } from '../tasks/task-service.ts';
import { LatencySamples, quantile } from './latency-samples.ts';

const SECOND_MS = 1_000;
/** Latency quantiles of a point are over the tasks that finished in this many seconds. */
const LATENCY_SECONDS = 10;
/** The store's states that count as queued (waiting for a worker, or for a retry's backoff). */
const QUEUED_STATES = ['waiting', 'prioritized', 'delayed'] as const;

export interface SeriesRecorderOptions {
  events: TaskEvents;
  registry: Pick<WorkerRegistry, 'list'>;
  tasks: Pick<TaskService, 'queueCounts'>;
  log: Logger;
  /** Points kept in memory; SERIES_SECONDS unless a test asks for fewer. */
  capacity?: number;
}

/** Tasks seen in the second being counted. */
interface SecondCounts {
  completed: number;
  failed: number;
  retried: number;
  latencies: LatencySamples;
  ttfts: LatencySamples;
}

const newSecond = (): SecondCounts => ({
  completed: 0,
  failed: 0,
  retried: 0,
  latencies: new LatencySamples(),
  ttfts: new LatencySamples(),
});

/** Waiting tasks per queue, from the store's counts by state. */
export function queuedOf(counts: Record<string, Record<string, number>>): Record<string, number> {
  const queued: Record<string, number> = {};
  for (const [queue, byState] of Object.entries(counts)) {
    queued[queue] = QUEUED_STATES.reduce((sum, state) => sum + (byState[state] ?? 0), 0);
  }
  return queued;
}

export class SeriesRecorder extends EventEmitter<{ point: [SeriesPoint] }> {
  private readonly log: Logger;
  private readonly capacity: number;
  /** The ring: `ring[(head + i) % capacity]` is the i-th oldest of `size` points. */
  private readonly ring: SeriesPoint[] = [];
  private head = 0;
  private size = 0;
  private current = newSecond();
  /** The last LATENCY_SECONDS seconds' samples, oldest first. */
  private readonly recent: SecondCounts[] = [];
  private queued: Record<string, number> = {};
  private polling = false;
  private pollFailing = false;
  private timer: NodeJS.Timeout | undefined;
  private started = false;

  private readonly onCompleted = (_session: string | undefined, task: TaskView) => {
    this.current.completed += 1;
    const { totalMs, ttftMs } = task.timings;
    if (totalMs !== undefined) this.current.latencies.add(totalMs);
    if (ttftMs !== undefined) this.current.ttfts.add(Math.max(0, ttftMs));
  };
  /** A cancellation says nothing about the fleet's health: only failures count. */
  private readonly onFailed = (_session: string | undefined, task: TaskView) => {
    if (task.state === 'failed') this.current.failed += 1;
  };
  private readonly onRetrying = () => {
    this.current.retried += 1;
  };

  constructor(private readonly options: SeriesRecorderOptions) {
    super();
    this.log = options.log.child({ component: 'series' });
    this.capacity = options.capacity ?? SERIES_SECONDS;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const { events } = this.options;
    events.on('completed', this.onCompleted);
    events.on('failed', this.onFailed);
    events.on('retrying', this.onRetrying);
    // The first point already has the queues' depths, most of the time.
    this.pollQueues();
    this.schedule();
  }

  close(): void {
    if (!this.started) return;
    this.started = false;
    const { events } = this.options;
    events.off('completed', this.onCompleted);
    events.off('failed', this.onFailed);
    events.off('retrying', this.onRetrying);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The points kept, oldest first; with `sinceMs`, those of that second and later. */
  points(sinceMs?: number): SeriesPoint[] {
    const out: SeriesPoint[] = [];
    for (let i = 0; i < this.size; i++) {
      const point = this.ring[(this.head + i) % this.capacity] as SeriesPoint;
      if (sinceMs === undefined || point.at >= sinceMs) out.push(point);
    }
    return out;
  }

  latest(): SeriesPoint | undefined {
    if (this.size === 0) return undefined;
    return this.ring[(this.head + this.size - 1) % this.capacity];
  }

  /**
   * The next tick at the next whole second: timers drift, the boundary does
   * not. The point is named by the boundary the timer was set for, not by
   * the clock when it fires (a timer may fire a millisecond early, which
   * would name two points after one second), and always after the last.
   */
  private schedule(): void {
    const now = Date.now();
    const boundary = Math.max(
      now - (now % SECOND_MS) + SECOND_MS,
      (this.latest()?.at ?? Number.NEGATIVE_INFINITY) + 2 * SECOND_MS,
    );
    this.timer = setTimeout(
      () => {
        this.tick(boundary - SECOND_MS);
        if (this.started) this.schedule();
      },
      Math.max(0, boundary - now),
    );
    this.timer.unref();
  }

  /** Closes the second that starts at `at`. */
  private tick(at: number): void {
    const ended = this.current;
    this.current = newSecond();
    this.recent.push(ended);
    if (this.recent.length > LATENCY_SECONDS) this.recent.shift();
    const point = this.pointOf(at, ended);
    this.push(point);
    this.pollQueues();
    this.emit('point', point);
  }

  private pointOf(at: number, second: SecondCounts): SeriesPoint {
    let slots = 0;
    let busy = 0;
    let workersOnline = 0;
    for (const worker of this.options.registry.list()) {
      if (worker.state !== 'online') continue;
      workersOnline += 1;
      slots += worker.status.slots;
      busy += worker.active.size;
    }
    const latencies = this.recent.flatMap((s) => s.latencies.values()).sort((a, b) => a - b);
    const ttfts = this.recent.flatMap((s) => s.ttfts.values()).sort((a, b) => a - b);
    return {
      at,
      completed: second.completed,
      failed: second.failed,
      retried: second.retried,
      latencyP50Ms: quantile(latencies, 0.5),
      latencyP95Ms: quantile(latencies, 0.95),
      ttftP50Ms: quantile(ttfts, 0.5),
      queued: { ...this.queued },
      slots,
      busy,
      workersOnline,
    };
  }

  private push(point: SeriesPoint): void {
    if (this.size < this.capacity) {
      this.ring[(this.head + this.size) % this.capacity] = point;
      this.size += 1;
      return;
    }
    this.ring[this.head] = point;
    this.head = (this.head + 1) % this.capacity;
  }

  /** One store call at a time: its answer is the next point's depths. */
  private pollQueues(): void {
    if (this.polling) return;
    this.polling = true;
    this.options.tasks
      .queueCounts()
      .then((counts) => {
        this.queued = queuedOf(counts);
        if (this.pollFailing) this.log.info('queue depths readable again');
        this.pollFailing = false;
      })
      .catch((err: unknown) => {
        // The depths stay as last read; one line per outage, not one a second.
        if (!this.pollFailing) this.log.warn({ err: String(err) }, 'queue depths unreadable');
        this.pollFailing = true;
      })
      .finally(() => {
        this.polling = false;
      });
  }
}
