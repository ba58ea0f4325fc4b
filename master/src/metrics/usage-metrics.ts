/**
 * Usage per tenant and model on `/metrics`, counted as this master sees
 * tasks end (each end is seen by one master: add the masters' series up).
 *
 * Labels are bounded: a tenant is one of the configured tokens' (or
 * `default` without tokens), anything else `other`; the first
 * MAX_MODEL_SERIES models get their own label, later ones `other`.
 */
import { Counter, type Registry } from 'prom-client';
import { DEFAULT_TENANT, type StoredTask, toTaskView } from '../tasks/task-data.ts';
import type { TaskRecordEvents } from '../tasks/task-events.ts';
import { MAX_MODEL_SERIES, OTHER_MODEL } from './model-metrics.ts';

export const OTHER_TENANT = 'other';

export interface UsageMetricsDeps {
  records: TaskRecordEvents;
  /** The configured tenants (API tokens); empty without tokens. */
  tenants: readonly string[];
}

/** Registers the usage counters; returns what stops counting. */
export function registerUsageMetrics(reg: Registry, deps: UsageMetricsDeps): () => void {
  const tenants = new Set(deps.tenants.length > 0 ? deps.tenants : [DEFAULT_TENANT]);
  const tenantOf = (tenant: string | undefined) => {
    const name = tenant ?? DEFAULT_TENANT;
    return tenants.has(name) ? name : OTHER_TENANT;
  };
  const models = new Set<string>();
  const modelOf = (model: string) => {
    if (models.has(model)) return model;
    if (models.size >= MAX_MODEL_SERIES) return OTHER_MODEL;
    models.add(model);
    zero(model);
    return model;
  };

  const requests = new Counter({
    name: 'flota_usage_requests_total',
    help: 'Tasks that ended, per tenant, model and outcome (completed, failed, cancelled)',
    labelNames: ['tenant', 'model', 'outcome'],
    registers: [reg],
  });
  const tokens = new Counter({
    name: 'flota_usage_tokens_total',
    help: 'Tokens of ended tasks, per tenant, model and direction (input, output)',
    labelNames: ['tenant', 'model', 'direction'],
    registers: [reg],
  });
  const compute = new Counter({
    name: 'flota_usage_compute_seconds_total',
    help: 'Seconds workers spent on the answers of completed tasks, per tenant and model',
    labelNames: ['tenant', 'model'],
    registers: [reg],
  });
  const cacheHits = new Counter({
    name: 'flota_usage_cache_hits_total',
    help: 'Tasks answered from the result cache, per tenant and model',
    labelNames: ['tenant', 'model'],
    registers: [reg],
  });

  /**
   * Every tenant's series of a model start at 0 before the model's first
   * count (`other` from the start), so increase() over a restart counts the
   * first task too, and every counter has its series from the first scrape.
   */
  function zero(model: string): void {
    for (const tenant of [...tenants, OTHER_TENANT]) {
      for (const outcome of ['completed', 'failed', 'cancelled']) {
        requests.inc({ tenant, model, outcome }, 0);
      }
      tokens.inc({ tenant, model, direction: 'input' }, 0);
      tokens.inc({ tenant, model, direction: 'output' }, 0);
      compute.inc({ tenant, model }, 0);
      cacheHits.inc({ tenant, model }, 0);
    }
  }
  zero(OTHER_MODEL);

  /** A counter only grows: anything but a positive finite amount adds nothing. */
  const amount = (n: number | undefined) =>
    n !== undefined && Number.isFinite(n) && n > 0 ? n : 0;
  const onFinished = (task: StoredTask) => {
    const view = toTaskView(task);
    const labels = { tenant: tenantOf(task.data.tenant), model: modelOf(task.data.model) };
    requests.inc({ ...labels, outcome: view.state });
    if (view.usage) {
      tokens.inc({ ...labels, direction: 'input' }, amount(view.usage.inputTokens));
      tokens.inc({ ...labels, direction: 'output' }, amount(view.usage.outputTokens));
    }
    const processingMs = amount(task.result?.processingMs);
    if (view.state === 'completed' && processingMs > 0) compute.inc(labels, processingMs / 1000);
    if (view.cache?.hit) cacheHits.inc(labels);
  };
  deps.records.on('finished', onFinished);
  return () => deps.records.off('finished', onFinished);
}
