/**
 * The alert rules as pure functions: the fleet's facts in, the conditions
 * that hold now out. How long a condition must hold before it fires, and
 * what firing and resolving mean, is the engine's (alert-engine.ts).
 * deploy/monitoring/alerts.yml says the same in PromQL.
 */
import type { AlertRule } from '../../../proto/src/schemas/console.ts';
import type { MasterConfig } from '../config.ts';

export interface AlertThresholds {
  /** `worker_down` after this long offline; 0 = off. */
  workerDownMs: number;
  /** `backlog` above this many queued tasks; 0 = off. */
  backlogTasks: number;
  backlogMs: number;
  /** One `backlog` alert per queue instead of one on the total. */
  backlogPerQueue: boolean;
  /** What `error_rate` and `latency_p95` look back over. */
  windowMs: number;
  /** `error_rate` above this share; 0 = off. */
  errorRate: number;
  /** Fewest finished tasks over the window for `error_rate` and `latency_p95`. */
  minTasks: number;
  /** `latency_p95` above this; 0 = off. */
  p95Ms: number;
  /** `no_worker_for_model` after this long; 0 = off. */
  noWorkerMs: number;
}

export function alertThresholdsOf(
  config: Pick<
    MasterConfig,
    | 'ALERT_WORKER_DOWN_SECONDS'
    | 'ALERT_BACKLOG_TASKS'
    | 'ALERT_BACKLOG_SECONDS'
    | 'ALERT_BACKLOG_PER_QUEUE'
    | 'ALERT_WINDOW_SECONDS'
    | 'ALERT_ERROR_RATE'
    | 'ALERT_MIN_TASKS'
    | 'ALERT_P95_MS'
    | 'ALERT_NO_WORKER_SECONDS'
  >,
): AlertThresholds {
  return {
    workerDownMs: config.ALERT_WORKER_DOWN_SECONDS * 1000,
    backlogTasks: config.ALERT_BACKLOG_TASKS,
    backlogMs: config.ALERT_BACKLOG_SECONDS * 1000,
    backlogPerQueue: config.ALERT_BACKLOG_PER_QUEUE,
    windowMs: config.ALERT_WINDOW_SECONDS * 1000,
    errorRate: config.ALERT_ERROR_RATE,
    minTasks: config.ALERT_MIN_TASKS,
    p95Ms: config.ALERT_P95_MS,
    noWorkerMs: config.ALERT_NO_WORKER_SECONDS * 1000,
  };
}

/** What the rules look at, gathered once per evaluation. */
export interface FleetFacts {
  /** Workers the registry knows; an offline one stays until the registry forgets it. */
  workers: ReadonlyArray<{ id: string; online: boolean; cleanStop: boolean }>;
  /** Waiting tasks per queue name, as last measured. */
  queued: Readonly<Record<string, number>>;
  /** Tasks that finished over the window (cancellations not counted). */
  finished: { completed: number; failed: number };
  /** Submission → result over the window: how many were measured, and their p95. */
  latency: { count: number; p95Ms?: number };
  /** The queues' models that no online worker can take from, with their waiting tasks. */
  unserved: ReadonlyArray<{ queue: string; model: string; queued: number }>;
}

/** A rule holding for a subject now. */
export interface Condition {
  rule: AlertRule;
  subject: string;
  severity: 'warning' | 'critical';
  message: string;
  value?: number;
}

/** How long a rule's condition must hold before it fires; undefined: the rule is off. */
export function holdMsOf(rule: AlertRule, t: AlertThresholds): number | undefined {
  switch (rule) {
    case 'worker_down':
      return t.workerDownMs > 0 ? t.workerDownMs : undefined;
    case 'backlog':
      return t.backlogTasks > 0 ? t.backlogMs : undefined;
    // The window already smooths these two: they fire as soon as it says so.
    case 'error_rate':
      return t.errorRate > 0 ? 0 : undefined;
    case 'latency_p95':
      return t.p95Ms > 0 ? 0 : undefined;
    case 'no_worker_for_model':
      return t.noWorkerMs > 0 ? t.noWorkerMs : undefined;
    default: {
      const unknown: never = rule;
      throw new Error(`no hold time for rule ${String(unknown)}`);
    }
  }
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/** A worker that went away without a clean stop. */
export function workerDown(facts: FleetFacts, t: AlertThresholds): Condition[] {
  return facts.workers
    .filter((w) => !w.online && !w.cleanStop)
    .map((w) => ({
      rule: 'worker_down',
      subject: w.id,
      severity: 'warning',
      message: `worker ${w.id} went offline and has been away ${seconds(t.workerDownMs)} or more`,
    }));
}

export function backlog(facts: FleetFacts, t: AlertThresholds): Condition[] {
  const over = (subject: string, queued: number, where: string): Condition[] =>
    queued > t.backlogTasks
      ? [
          {
            rule: 'backlog',
            subject,
            severity: 'warning',
            message: `${queued} tasks queued ${where}, more than ${t.backlogTasks}`,
            value: queued,
          },
        ]
      : [];
  if (t.backlogPerQueue) {
    return Object.entries(facts.queued).flatMap(([queue, n]) => over(queue, n, `in ${queue}`));
  }
  const total = Object.values(facts.queued).reduce((sum, n) => sum + n, 0);
  return over('all', total, 'in all queues');
}

export function errorRate(facts: FleetFacts, t: AlertThresholds): Condition[] {
  const { completed, failed } = facts.finished;
  const finished = completed + failed;
  if (finished < t.minTasks || finished === 0) return [];
  const rate = failed / finished;
  if (rate <= t.errorRate) return [];
  return [
    {
      rule: 'error_rate',
      subject: 'fleet',
      severity: 'critical',
      message: `${failed} of ${finished} tasks failed over the last ${seconds(t.windowMs)} (${Math.round(rate * 100)} %, above ${Math.round(t.errorRate * 100)} %)`,
      value: Math.round(rate * 1000) / 1000,
    },
  ];
}

export function latencyP95(facts: FleetFacts, t: AlertThresholds): Condition[] {
  const { count, p95Ms } = facts.latency;
  if (count < t.minTasks || p95Ms === undefined || p95Ms <= t.p95Ms) return [];
  return [
    {
      rule: 'latency_p95',
      subject: 'fleet',
      severity: 'warning',
      message: `p95 submission → result is ${Math.round(p95Ms)} ms over the last ${seconds(t.windowMs)}, above ${t.p95Ms} ms`,
      value: Math.round(p95Ms),
    },
  ];
}

export function noWorkerForModel(facts: FleetFacts, _t: AlertThresholds): Condition[] {
  const byModel = new Map<string, { queued: number; queues: string[] }>();
  for (const { queue, model, queued } of facts.unserved) {
    if (queued <= 0) continue;
    const entry = byModel.get(model) ?? { queued: 0, queues: [] };
    entry.queued += queued;
    entry.queues.push(queue);
    byModel.set(model, entry);
  }
  return [...byModel].map(([model, { queued, queues }]) => ({
    rule: 'no_worker_for_model',
    subject: model,
    severity: 'critical',
    message: `${queued} tasks wait for model ${model} and no online worker can take them (${queues.sort().join(', ')})`,
    value: queued,
  }));
}

const RULES: Record<AlertRule, (facts: FleetFacts, t: AlertThresholds) => Condition[]> = {
  worker_down: workerDown,
  backlog,
  error_rate: errorRate,
  latency_p95: latencyP95,
  no_worker_for_model: noWorkerForModel,
};

/** Every enabled rule's conditions that hold now. */
export function conditionsOf(facts: FleetFacts, t: AlertThresholds): Condition[] {
  return (Object.keys(RULES) as AlertRule[])
    .filter((rule) => holdMsOf(rule, t) !== undefined)
    .flatMap((rule) => RULES[rule](facts, t));
}
