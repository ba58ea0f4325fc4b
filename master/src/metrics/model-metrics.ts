/**
 * Per-model metrics on `/metrics`. What the heartbeats say (who holds a model
 * in memory, how much memory, how long its load took) is read from the
 * registry at scrape time, aggregated per model: ten thousand workers would
 * make too many series per worker. Time to first token and tokens per second
 * are observed per completed task, labelled by model.
 *
 * The model label is bounded: a model no worker the registry knows
 * advertises (a queue left from an old fleet, say) counts as `other`, and so
 * does every model past the first MAX_MODEL_SERIES.
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskEvents } from '../tasks/task-events.ts';

/** Most distinct model labels; the rest count as OTHER_MODEL. */
export const MAX_MODEL_SERIES = 200;
export const OTHER_MODEL = 'other';

const MB = 1_048_576;
/**
 * The three heartbeat gauges of one scrape share one pass over the records
 * (with ten thousand workers a pass costs milliseconds): a tally this young
 * is used again.
 */
const TALLY_REUSE_MS = 1_000;
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKENS_PER_SECOND_BUCKETS = [
  1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1_000, 5_000,
];

export interface ModelMetricsDeps {
  events: TaskEvents;
  registry: Pick<WorkerRegistry, 'list' | 'advertises'>;
}

/** One model's heartbeat facts over the online workers, at one scrape. */
interface ModelTally {
  serving: number;
  loaded: number;
  memMb: number;
  loadMs: number;
}

/** Registers the per-model metrics; returns what stops the task observations. */
export function registerModelMetrics(reg: Registry, deps: ModelMetricsDeps): () => void {
  const labelled = new Set<string>();
  const labelOf = (model: string): string => {
    if (labelled.has(model)) return model;
    if (labelled.size >= MAX_MODEL_SERIES || !deps.registry.advertises(model)) return OTHER_MODEL;
    labelled.add(model);
    return model;
  };

  const ttft = new Histogram({
    name: 'flota_model_ttft_seconds',
    help: 'Submitted → the answer’s first streamed piece at the master, per model (completed tasks that streamed)',
    labelNames: ['model'],
    buckets: TTFT_BUCKETS,
    registers: [reg],
  });
  const tokensPerSecond = new Histogram({
    name: 'flota_model_tokens_per_second',
    help: 'Output tokens over the provider’s processing time, per model (completed tasks whose provider counted tokens)',
    labelNames: ['model'],
    buckets: TOKENS_PER_SECOND_BUCKETS,
    registers: [reg],
  });
  const onCompleted = (_session: string | undefined, task: TaskView) => {
    if (task.workerId === undefined) return; // answered from the cache: no model ran
    const { ttftMs, processingMs } = task.timings;
    const outputTokens = task.usage?.outputTokens ?? 0;
    const streamed = ttftMs !== undefined;
    const counted = outputTokens > 0 && processingMs !== undefined && processingMs > 0;
    if (!streamed && !counted) return;
    const model = labelOf(task.model);
    if (streamed) ttft.observe({ model }, Math.max(0, ttftMs) / 1000);
    if (counted) tokensPerSecond.observe({ model }, outputTokens / (processingMs / 1000));
  };
  deps.events.on('completed', onCompleted);

  /** One pass over the records at scrape time; nothing on the heartbeat path. */
  const tally = (): Map<string, ModelTally> => {
    const models = new Map<string, ModelTally>();
    const at = (model: string) => {
      let t = models.get(model);
      if (!t) {
        t = { serving: 0, loaded: 0, memMb: 0, loadMs: 0 };
        models.set(model, t);
      }
      return t;
    };
    for (const record of deps.registry.list()) {
      if (record.state !== 'online') continue;
      for (const model of record.status.models) at(model).serving += 1;
      for (const loaded of record.heartbeat?.loaded ?? []) {
        if (record.local?.has(loaded.name) !== true) continue;
        const t = at(loaded.name);
        t.loaded += 1;
        t.memMb += loaded.memMb;
        t.loadMs += loaded.loadMs;
      }
    }
    return models;
  };
  /** Per label: several models past the bound add up under `other`. */
  let last: { at: number; labels: Map<string, ModelTally> } | undefined;
  const byLabel = (): Map<string, ModelTally> => {
    const now = Date.now();
    if (last && now - last.at < TALLY_REUSE_MS) return last.labels;
    const labels = new Map<string, ModelTally>();
    for (const [model, t] of tally()) {
      const label = labelOf(model);
      const sum = labels.get(label);
      if (!sum) labels.set(label, { ...t });
      else {
        sum.serving += t.serving;
        sum.loaded += t.loaded;
        sum.memMb += t.memMb;
        sum.loadMs += t.loadMs;
      }
    }
    last = { at: now, labels };
    return labels;
  };

  new Gauge({
    name: 'flota_model_workers',
    help: 'Online workers per model that serve it (state=serving) and that hold it in memory now (state=loaded; local models)',
    labelNames: ['model', 'state'],
    registers: [reg],
    collect() {
      this.reset();
      for (const [model, t] of byLabel()) {
        this.set({ model, state: 'serving' }, t.serving);
        this.set({ model, state: 'loaded' }, t.loaded);
      }
    },
  });
  new Gauge({
    name: 'flota_model_memory_bytes',
    help: 'Memory the loaded copies of a model take, all online workers together (from heartbeats)',
    labelNames: ['model'],
    registers: [reg],
    collect() {
      this.reset();
      for (const [model, t] of byLabel()) if (t.loaded > 0) this.set({ model }, t.memMb * MB);
    },
  });
  new Gauge({
    name: 'flota_model_load_seconds',
    help: 'Mean of the last load time of a model over the online workers holding it (from heartbeats)',
    labelNames: ['model'],
    registers: [reg],
    collect() {
      this.reset();
      for (const [model, t] of byLabel())
        if (t.loaded > 0) this.set({ model }, t.loadMs / t.loaded / 1000);
    },
  });

  return () => deps.events.off('completed', onCompleted);
}
