/**
 * Per-model metrics: heartbeat facts aggregated per model at scrape time,
 * time to first token and tokens per second per completed task, and a
 * bounded model label.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  MAX_MODEL_SERIES,
  OTHER_MODEL,
  registerModelMetrics,
} from '../../../master/src/metrics/model-metrics.ts';
import { localModelsOf, type WorkerRecord } from '../../../master/src/registry/worker-record.ts';
import { TaskEvents } from '../../../master/src/tasks/task-events.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerOnline } from '../../../proto/src/schemas/worker.ts';

function llama(id: string, loaded: Array<{ name: string; memMb: number; loadMs: number }>) {
  const status: WorkerOnline = {
    state: 'online',
    id,
    kind: 'cpu',
    models: ['tiny', 'small'],
    providers: ['llama'],
    slots: 1,
    labels: {},
    weight: 1,
    version: 't',
    host: 'h',
    heartbeatMs: 1_000,
    startedAt: 1,
  };
  const record: WorkerRecord = {
    status,
    state: 'online',
    lastSeen: 0,
    active: new Map(),
    holds: new Set(),
    local: localModelsOf(status),
    heartbeat: {
      id,
      ts: 0,
      cpuPct: 1,
      mem: { usedPct: 1, totalMb: 1, rssMb: 1 },
      gpus: [],
      freeSlots: 1,
      active: [],
      draining: false,
      loaded: loaded.map((l) => ({ ...l, lastUsedAt: 1 })),
    },
  };
  return record;
}

function completed(model: string, over: Partial<TaskView> = {}): TaskView {
  return {
    id: `any.${model}.0123456789abcdef0123456789abcdef`,
    state: 'completed',
    model,
    priority: 0,
    requires: {},
    attempt: 1,
    result: 'ok',
    workerId: 'a',
    workerKind: 'cpu',
    usage: { inputTokens: 3, outputTokens: 50 },
    timings: { submittedAt: 0, processingMs: 2_000, firstChunkAt: 250, ttftMs: 250 },
    ...over,
  };
}

function setup(records: WorkerRecord[], advertised = ['tiny', 'small']) {
  const reg = new Registry();
  const events = new TaskEvents();
  const detach = registerModelMetrics(reg, {
    events,
    registry: { list: () => records, advertises: (model) => advertised.includes(model) },
  });
  const values = async (name: string) => (await reg.getSingleMetric(name)?.get())?.values ?? [];
  return { reg, events, detach, values };
}

describe('per-model metrics', () => {
  it('aggregates what the heartbeats say per model, not per worker', async () => {
    const { values } = setup([
      llama('a', [{ name: 'tiny', memMb: 100, loadMs: 1_000 }]),
      llama('b', [
        { name: 'tiny', memMb: 300, loadMs: 3_000 },
        { name: 'small', memMb: 50, loadMs: 500 },
      ]),
      llama('c', []),
    ]);
    const workers = await values('flota_model_workers');
    expect(workers).toEqual(
      expect.arrayContaining([
        { labels: { model: 'tiny', state: 'serving' }, value: 3 },
        { labels: { model: 'tiny', state: 'loaded' }, value: 2 },
        { labels: { model: 'small', state: 'loaded' }, value: 1 },
      ]),
    );
    expect(await values('flota_model_memory_bytes')).toEqual(
      expect.arrayContaining([{ labels: { model: 'tiny' }, value: 400 * 1_048_576 }]),
    );
    expect(await values('flota_model_load_seconds')).toEqual(
      expect.arrayContaining([
        { labels: { model: 'tiny' }, value: 2 },
        { labels: { model: 'small' }, value: 0.5 },
      ]),
    );
  });

  it('observes time to first token and tokens per second of completed tasks, by model', async () => {
    const { events, values, detach } = setup([]);
    events.emit('completed', undefined, completed('tiny'));
    // Answered from the cache: no model ran, nothing to observe.
    events.emit('completed', undefined, completed('tiny', { workerId: undefined }));
    // A model no worker advertises is counted, as `other`.
    events.emit('completed', undefined, completed('gone'));
    const ttft = await values('flota_model_ttft_seconds');
    expect(ttft).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          metricName: 'flota_model_ttft_seconds_sum',
          labels: { model: 'tiny' },
          value: 0.25,
        }),
        expect.objectContaining({
          metricName: 'flota_model_ttft_seconds_count',
          labels: { model: 'tiny' },
          value: 1,
        }),
        expect.objectContaining({
          metricName: 'flota_model_ttft_seconds_count',
          labels: { model: OTHER_MODEL },
          value: 1,
        }),
      ]),
    );
    const rate = await values('flota_model_tokens_per_second');
    expect(rate).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          metricName: 'flota_model_tokens_per_second_sum',
          labels: { model: 'tiny' },
          value: 25,
        }),
      ]),
    );
    detach();
    events.emit('completed', undefined, completed('tiny'));
    expect(await values('flota_model_ttft_seconds')).toContainEqual(
      expect.objectContaining({
        metricName: 'flota_model_ttft_seconds_count',
        labels: { model: 'tiny' },
        value: 1,
      }),
    );
  });

  it(`labels at most ${MAX_MODEL_SERIES} models, the rest as other`, async () => {
    const names = Array.from({ length: MAX_MODEL_SERIES + 3 }, (_, i) => `m${i}`);
    const { events, values } = setup([], names);
    for (const name of names) events.emit('completed', undefined, completed(name));
    const counts = (await values('flota_model_ttft_seconds')).filter(
      (v) => (v as { metricName?: string }).metricName === 'flota_model_ttft_seconds_count',
    );
    expect(counts).toHaveLength(MAX_MODEL_SERIES + 1);
    expect(counts).toContainEqual(
      expect.objectContaining({ labels: { model: OTHER_MODEL }, value: 3 }),
    );
  });
});
