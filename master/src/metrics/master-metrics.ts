/**
 * Prometheus metrics (`GET /metrics`) and the same facts as JSON
 * (`GET /api/metrics`) for the dashboard. Everything is read from the modules
 * that own it — task events, the registry, the queues — at scrape time, so no
 * hot path carries metrics code.
 */
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type Metric,
  type MetricValueWithName,
  Registry,
} from 'prom-client';
import { RESULT_REJECT_REASONS } from '../../../proto/src/schemas/codes.ts';
import type { MetricsSnapshot } from '../../../proto/src/schemas/metrics.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { ResultCache } from '../cache/result-cache.ts';
import { HEARTBEAT_LAG_BUCKETS_MS, type HeartbeatCounts } from '../registry/heartbeat-meter.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { ResultHandler } from '../results/result-handler.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import type { TaskService } from '../tasks/task-service.ts';
import { registerModelMetrics } from './model-metrics.ts';

/**
 * Most workers with series of their own in `flota_worker_slots` (the first by
 * id). Ten thousand workers made 20,000 series and a one-second scrape;
 * `flota_fleet_slots` keeps the fleet's totals whatever its size.
 */
export const MAX_WORKER_SERIES = 1_000;

const SECONDS_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

export interface MetricsDeps {
  events: TaskEvents;
  registry: WorkerRegistry;
  tasks: TaskService;
  results: ResultHandler;
  cache?: ResultCache;
}

export class MasterMetrics {
  readonly registry = new Registry();
  private readonly outcomes = { completed: 0, failed: 0 };
  private readonly detach: () => void;

  constructor(private readonly deps: MetricsDeps) {
    const reg = this.registry;
    collectDefaultMetrics({ register: reg, prefix: 'flota_master_' });
    const tasksTotal = new Counter({
      name: 'flota_tasks_total',
      help: 'Tasks that reached a terminal state, by outcome',
      labelNames: ['outcome'],
      registers: [reg],
    });
    // Every series exists at 0 from the first scrape, so increase() is right over a restart.
    for (const outcome of ['completed', 'failed']) tasksTotal.inc({ outcome }, 0);
    const queueSeconds = new Histogram({
      name: 'flota_task_queue_seconds',
      help: 'Submitted → assigned, for completed tasks',
      buckets: SECONDS_BUCKETS,
      registers: [reg],
    });
    const totalSeconds = new Histogram({
      name: 'flota_task_total_seconds',
      help: 'Submitted → result committed, for completed tasks',
      buckets: SECONDS_BUCKETS,
      registers: [reg],
    });
    const onCompleted = (_s: string | undefined, task: TaskView) => {
      this.outcomes.completed += 1;
      tasksTotal.inc({ outcome: 'completed' });
      if (task.timings.queueMs !== undefined) queueSeconds.observe(task.timings.queueMs / 1000);
      if (task.timings.totalMs !== undefined) totalSeconds.observe(task.timings.totalMs / 1000);
    };
    const onFailed = () => {
      this.outcomes.failed += 1;
      tasksTotal.inc({ outcome: 'failed' });
    };
    deps.events.on('completed', onCompleted);
    deps.events.on('failed', onFailed);
    const detachModels = registerModelMetrics(reg, deps);
    this.detach = () => {
      deps.events.off('completed', onCompleted);
      deps.events.off('failed', onFailed);
      detachModels();
    };

    new Counter({
      name: 'flota_results_rejected_total',
      help: 'Chunks and results refused by the fencing check, by reason',
      labelNames: ['reason'],
      registers: [reg],
      collect() {
        this.reset();
        for (const reason of RESULT_REJECT_REASONS) {
          this.inc({ reason }, deps.results.rejected.get(reason) ?? 0);
        }
      },
    });
    const cache = deps.cache;
    new Counter({
      name: 'flota_cache_hits_total',
      help: 'Tasks answered from the result cache (no worker ran them)',
      registers: [reg],
      collect() {
        this.reset();
        this.inc(cache?.hits ?? 0);
      },
    });
    new Counter({
      name: 'flota_cache_misses_total',
      help: 'Tasks the result cache could not answer (run by a worker)',
      registers: [reg],
      collect() {
        this.reset();
        this.inc(cache?.misses ?? 0);
      },
    });
    new Gauge({
      name: 'flota_workers',
      help: 'Workers the registry knows, by state',
      labelNames: ['state'],
      registers: [reg],
      collect() {
        this.reset();
        let online = 0;
        for (const w of deps.registry.list()) if (w.state === 'online') online++;
        this.set({ state: 'online' }, online);
        this.set({ state: 'offline' }, deps.registry.size() - online);
      },
    });
    new Gauge({
      name: 'flota_worker_slots',
      help: `Per online worker (the first ${MAX_WORKER_SERIES} by id): slots (kind=total) and tasks assigned by this master (kind=active)`,
      labelNames: ['worker', 'kind'],
      registers: [reg],
      collect() {
        this.reset();
        let series = 0;
        for (const w of deps.registry.list()) {
          if (w.state !== 'online') continue;
          if (++series > MAX_WORKER_SERIES) break;
          this.set({ worker: w.status.id, kind: 'total' }, w.status.slots);
          this.set({ worker: w.status.id, kind: 'active' }, w.active.size);
        }
      },
    });
    new Gauge({
      name: 'flota_fleet_slots',
      help: 'All online workers together: slots (kind=total) and tasks assigned by this master (kind=active)',
      labelNames: ['kind'],
      registers: [reg],
      collect() {
        let total = 0;
        let active = 0;
        for (const w of deps.registry.list()) {
          if (w.state !== 'online') continue;
          total += w.status.slots;
          active += w.active.size;
        }
        this.set({ kind: 'total' }, total);
        this.set({ kind: 'active' }, active);
      },
    });
    new Counter({
      name: 'flota_heartbeats_total',
      help: 'Worker heartbeats the registry received, and of those applied to an online worker',
      labelNames: ['outcome'],
      registers: [reg],
      collect() {
        this.reset();
        const { received, applied } = deps.registry.heartbeats.counts();
        this.inc({ outcome: 'received' }, received);
        this.inc({ outcome: 'applied' }, applied);
      },
    });
    reg.registerMetric(heartbeatLagHistogram(() => deps.registry.heartbeats.counts()));
    new Gauge({
      name: 'flota_queue_jobs',
      help: 'Jobs per queue and state',
      labelNames: ['queue', 'state'],
      registers: [reg],
      async collect() {
        this.reset();
        const queues = await deps.tasks.queueCounts();
        for (const [queue, counts] of Object.entries(queues)) {
          for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
        }
      },
    });
  }

  async snapshot(): Promise<MetricsSnapshot> {
    let online = 0;
    let slots = 0;
    let active = 0;
    for (const w of this.deps.registry.list()) {
      if (w.state !== 'online') continue;
      online++;
      slots += w.status.slots;
      active += w.active.size;
    }
    return {
      tasks: { ...this.outcomes },
      workers: { online, offline: this.deps.registry.size() - online, slots, active },
      queues: await this.deps.tasks.queueCounts(),
      resultsRejected: Object.fromEntries(this.deps.results.rejected),
      cache: {
        enabled: this.deps.cache?.enabled ?? false,
        hits: this.deps.cache?.hits ?? 0,
        misses: this.deps.cache?.misses ?? 0,
      },
    };
  }

  close(): void {
    this.detach();
  }
}

const LAG_NAME = 'flota_heartbeat_lag_seconds';
const LAG_HELP =
  "Heartbeat sent (the worker's clock) → applied by the registry; past the heartbeat period, the master is falling behind";

/**
 * The registry's lag counts as a Prometheus histogram, built at scrape time
 * (prom-client's Histogram takes one observation at a time, which would put
 * metrics code on every heartbeat). prom-client formats any registered object
 * with a name, a help, a type and a `get()` of values; its `Metric` type
 * describes its own classes, hence the one cast.
 */
function heartbeatLagHistogram(read: () => HeartbeatCounts): Metric {
  const get = async () => {
    const { applied, lagSumMs, lagBuckets } = read();
    const bucket = `${LAG_NAME}_bucket`;
    const values: MetricValueWithName<'le'>[] = [];
    let cumulative = 0;
    for (const [i, boundMs] of HEARTBEAT_LAG_BUCKETS_MS.entries()) {
      cumulative += lagBuckets[i] ?? 0;
      values.push({ metricName: bucket, labels: { le: boundMs / 1000 }, value: cumulative });
    }
    values.push({ metricName: bucket, labels: { le: '+Inf' }, value: applied });
    values.push({ metricName: `${LAG_NAME}_sum`, labels: {}, value: lagSumMs / 1000 });
    values.push({ metricName: `${LAG_NAME}_count`, labels: {}, value: applied });
    return { name: LAG_NAME, help: LAG_HELP, type: 'histogram', aggregator: 'sum', values };
  };
  return { name: LAG_NAME, help: LAG_HELP, type: 'histogram', get } as unknown as Metric;
}
