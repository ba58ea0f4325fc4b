/**
 * The alerts: each second, as the series records a point, the rules
 * (rules.ts) are asked what holds; a condition that has held for its rule's
 * time fires, one that no longer holds resolves. Every change is emitted
 * once (`change`), for the webhook and the console; the last
 * MAX_RECENT resolved alerts are kept for `GET /api/alerts`.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../../common/logger.ts';
import { parseQueueName } from '../../../proto/src/queues.ts';
import type { Alert, AlertsResponse, SeriesPoint } from '../../../proto/src/schemas/console.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { SeriesRecorder } from '../monitor/series.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import { LatencyWindow } from './latency-window.ts';
import {
  type AlertThresholds,
  type Condition,
  conditionsOf,
  type FleetFacts,
  holdMsOf,
} from './rules.ts';

/** Resolved alerts kept for `GET /api/alerts`, newest first. */
export const MAX_RECENT = 100;

export interface AlertEngineOptions {
  series: Pick<SeriesRecorder, 'on' | 'off' | 'points' | 'latest'>;
  events: Pick<TaskEvents, 'on' | 'off'>;
  registry: Pick<WorkerRegistry, 'list' | 'capable'>;
  thresholds: AlertThresholds;
  log: Logger;
  /** The clock; tests drive it. */
  now?: () => number;
}

export class AlertEngine extends EventEmitter<{ change: [Alert] }> {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly latencies: LatencyWindow;
  /** Alert id → since when its condition holds (firing or not yet). */
  private readonly pending = new Map<string, number>();
  private readonly firing = new Map<string, Alert>();
  private readonly recent: Alert[] = [];
  private started = false;

  private readonly onPoint = (_point: SeriesPoint) => this.evaluate();
  private readonly onCompleted = (_session: string | undefined, task: TaskView) => {
    if (task.timings.totalMs !== undefined) this.latencies.add(task.timings.totalMs, this.now());
  };

  constructor(private readonly options: AlertEngineOptions) {
    super();
    this.log = options.log.child({ component: 'alerts' });
    this.now = options.now ?? Date.now;
    this.latencies = new LatencyWindow(options.thresholds.windowMs);
  }

  current(): AlertsResponse {
    return {
      firing: [...this.firing.values()].map((a) => ({ ...a })),
      recent: this.recent.map((a) => ({ ...a })),
    };
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.options.series.on('point', this.onPoint);
    this.options.events.on('completed', this.onCompleted);
  }

  close(): void {
    if (!this.started) return;
    this.started = false;
    this.options.series.off('point', this.onPoint);
    this.options.events.off('completed', this.onCompleted);
  }

  /** One evaluation of every rule (the series calls it once a second). */
  evaluate(): void {
    const now = this.now();
    const t = this.options.thresholds;
    const holding = new Map<string, Condition>();
    for (const condition of conditionsOf(this.facts(now), t)) {
      holding.set(`${condition.rule}:${condition.subject}`, condition);
    }
    for (const id of this.pending.keys()) if (!holding.has(id)) this.pending.delete(id);
    for (const [id, alert] of this.firing) {
      if (!holding.has(id)) this.resolve(id, alert, now);
    }
    for (const [id, condition] of holding) {
      const since = this.pending.get(id) ?? now;
      this.pending.set(id, since);
      const alert = this.firing.get(id);
      if (alert) {
        // Still firing: the console sees the latest measure; no new change.
        alert.message = condition.message;
        alert.value = condition.value;
      } else if (now - since >= (holdMsOf(condition.rule, t) ?? 0)) {
        this.fire(id, condition, now);
      }
    }
  }

  private fire(id: string, condition: Condition, now: number): void {
    const alert: Alert = { id, ...condition, state: 'firing', firedAt: now };
    this.firing.set(id, alert);
    this.log.warn({ alert: id, value: alert.value }, `alert firing: ${alert.message}`);
    this.emit('change', { ...alert });
  }

  private resolve(id: string, alert: Alert, now: number): void {
    this.firing.delete(id);
    const resolved: Alert = { ...alert, state: 'resolved', resolvedAt: now };
    this.recent.unshift(resolved);
    if (this.recent.length > MAX_RECENT) this.recent.length = MAX_RECENT;
    this.log.info({ alert: id }, 'alert resolved');
    this.emit('change', { ...resolved });
  }

  private facts(now: number): FleetFacts {
    const { registry, series, thresholds } = this.options;
    const finished = { completed: 0, failed: 0 };
    for (const point of series.points(now - thresholds.windowMs)) {
      finished.completed += point.completed;
      finished.failed += point.failed;
    }
    const queued = series.latest()?.queued ?? {};
    return {
      workers: registry.list().map((w) => ({
        id: w.status.id,
        online: w.state === 'online',
        cleanStop: w.offlineReason === 'shutdown',
      })),
      queued,
      finished,
      latency: {
        count: this.latencies.count(now),
        p95Ms: this.latencies.quantile(0.95, now),
      },
      unserved: this.unserved(queued),
    };
  }

  /** Queues with waiting tasks that no online, undrained worker can take from. */
  private unserved(queued: Readonly<Record<string, number>>): FleetFacts['unserved'] {
    const out: Array<{ queue: string; model: string; queued: number }> = [];
    for (const [queue, n] of Object.entries(queued)) {
      if (n <= 0) continue;
      const key = parseQueueName(queue);
      if (!key) continue;
      // A digest stands for labels spelled out only in the jobs: judged by model and GPU alone.
      const need = { model: key.model, gpu: key.capability === 'gpu', labels: key.labels };
      if (this.options.registry.capable(need).length === 0) {
        out.push({ queue, model: key.model, queued: n });
      }
    }
    return out;
  }
}
