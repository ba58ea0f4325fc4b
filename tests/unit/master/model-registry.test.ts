import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { modelEntries } from '../../../master/src/registry/model-view.ts';
import type { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import {
  isReadyFor,
  keepHeartbeat,
  localModelsOf,
  samePanelLoad,
  type WorkerRecord,
} from '../../../master/src/registry/worker-record.ts';
import { MAX_MODEL_WORKER_IDS, modelsResponseSchema } from '../../../proto/src/schemas/models.ts';
import type { Heartbeat, LoadedModel, WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { type FakeMqtt, startFakeRegistry } from './fake-registry.ts';

const topics = createTopics();

/** A llama worker serving `tiny` and `small` (catalogued), an echo worker serving `echo`. */
const llamaStatus = (id: string, over: Partial<WorkerOnline> = {}): WorkerOnline => ({
  state: 'online',
  id,
  kind: 'cpu',
  models: ['tiny', 'small'],
  providers: ['llama'],
  catalog: [
    {
      name: 'tiny',
      provider: 'llama',
      sizeBytes: 1_000,
      quantization: 'Q4_K_M',
      contextLength: 2048,
    },
    { name: 'small', provider: 'llama', sizeBytes: 5_000 },
  ],
  slots: 2,
  labels: {},
  weight: 1,
  version: 't',
  host: 'h',
  heartbeatMs: 1_000,
  startedAt: 1,
  ...over,
});
const echoStatus = (id: string, over: Partial<WorkerOnline> = {}): WorkerOnline => ({
  ...llamaStatus(id),
  models: ['echo'],
  providers: ['echo'],
  catalog: undefined,
  ...over,
});
const loaded = (name: string, memMb = 100, loadMs = 400): LoadedModel => ({
  name,
  memMb,
  loadMs,
  lastUsedAt: 1,
});
const beat = (id: string, over: Partial<Heartbeat> = {}): Heartbeat => ({
  id,
  ts: Date.now(),
  cpuPct: 10,
  mem: { usedPct: 40, totalMb: 1, rssMb: 1 },
  gpus: [],
  freeSlots: 2,
  active: [],
  draining: false,
  ...over,
});
const record = (status: WorkerOnline, heartbeat?: Heartbeat): WorkerRecord => ({
  status,
  state: 'online',
  lastSeen: 0,
  heartbeat,
  active: new Map(),
  holds: new Set(),
  local: localModelsOf(status),
});

describe('localModelsOf and isReadyFor', () => {
  it('takes a model as local when its catalog entry, or the only provider, is local', () => {
    expect(localModelsOf(llamaStatus('a'))).toEqual(new Set(['tiny', 'small']));
    expect(localModelsOf(llamaStatus('a', { catalog: undefined }))).toEqual(
      new Set(['tiny', 'small']),
    );
    expect(localModelsOf(echoStatus('b'))).toBeUndefined();
    // Several providers and no catalog entry: nothing says the model is local.
    expect(
      localModelsOf(llamaStatus('c', { providers: ['llama', 'echo'], catalog: undefined })),
    ).toBeUndefined();
  });

  it('is ready for a remote model always, for a local one while its heartbeat lists it', () => {
    expect(isReadyFor(record(echoStatus('e')), 'echo')).toBe(true);
    expect(isReadyFor(record(llamaStatus('a')), 'tiny')).toBe(false);
    const warm = record(llamaStatus('a'), beat('a', { loaded: [loaded('tiny')] }));
    expect(isReadyFor(warm, 'tiny')).toBe(true);
    expect(isReadyFor(warm, 'small')).toBe(false);
  });
});

describe('heartbeats with loaded models', () => {
  it('redraws when the loaded names change, not when only their numbers do', () => {
    const before = beat('a', { loaded: [loaded('tiny')] });
    expect(samePanelLoad(before, beat('a', { loaded: [loaded('tiny', 120, 9)] }))).toBe(true);
    expect(samePanelLoad(before, beat('a', { loaded: [] }))).toBe(false);
    expect(samePanelLoad(before, beat('a'))).toBe(false);
    expect(samePanelLoad(beat('a'), beat('a', { loaded: [] }))).toBe(true);
    expect(samePanelLoad(before, beat('a', { loaded: [loaded('small')] }))).toBe(false);
  });

  it('forgets the kept list when a heartbeat has none', () => {
    const kept = keepHeartbeat(undefined, beat('a', { loaded: [loaded('tiny')] }));
    expect(keepHeartbeat(kept, beat('a')).loaded).toBeUndefined();
    const empty = keepHeartbeat(kept, beat('a', { loaded: [] })).loaded;
    expect(keepHeartbeat(kept, beat('a', { loaded: [] })).loaded).toBe(empty);
  });
});

describe('modelEntries', () => {
  it('counts serving and loaded workers, free slots and catalog facts per model', () => {
    const a = record(llamaStatus('a'), beat('a', { loaded: [loaded('tiny', 100, 400)] }));
    a.active.set('t1', 1);
    const b = record(
      llamaStatus('b', { kind: 'gpu', catalog: undefined }),
      beat('b', { loaded: [loaded('tiny', 300, 200), loaded('small', 900, 1_000)] }),
    );
    const e = record(echoStatus('e'), beat('e'));
    const gone: WorkerRecord = {
      ...record(echoStatus('gone', { models: ['old'] })),
      state: 'offline',
    };
    const entries = modelEntries([a, b, e, gone]);
    expect(modelsResponseSchema.parse({ models: entries }).models).toEqual(entries);
    expect(entries.map((m) => m.name)).toEqual(['echo', 'small', 'tiny']);
    expect(entries[0]).toEqual({
      name: 'echo',
      providers: ['echo'],
      kinds: ['cpu'],
      local: false,
      workers: { cpu: 1, gpu: 0 },
      workerIds: ['e'],
      loaded: { cpu: 0, gpu: 0 },
      loadedIds: [],
      freeSlots: 2,
    });
    expect(entries[2]).toEqual({
      name: 'tiny',
      providers: ['llama'],
      kinds: ['cpu', 'gpu'],
      local: true,
      workers: { cpu: 1, gpu: 1 },
      workerIds: ['a', 'b'],
      loaded: { cpu: 1, gpu: 1 },
      loadedIds: ['a', 'b'],
      freeSlots: 3,
      sizeBytes: 1_000,
      quantization: 'Q4_K_M',
      contextLength: 2048,
      memMb: 200,
      loadMs: 300,
    });
    expect(entries[1]).toMatchObject({ loadedIds: ['b'], memMb: 900, sizeBytes: 5_000 });
  });

  it('lists at most MAX_MODEL_WORKER_IDS ids and counts every worker', () => {
    const records = Array.from({ length: MAX_MODEL_WORKER_IDS + 5 }, (_, i) =>
      record(echoStatus(`w${String(i).padStart(4, '0')}`)),
    );
    const [echo] = modelEntries(records);
    expect(echo?.workers.cpu).toBe(MAX_MODEL_WORKER_IDS + 5);
    expect(echo?.workerIds).toHaveLength(MAX_MODEL_WORKER_IDS);
    expect(echo?.workerIds[0]).toBe('w0000');
  });
});

describe('WorkerRegistry model view', () => {
  let mqtt: FakeMqtt;
  let registry: WorkerRegistry;
  beforeEach(async () => {
    vi.useFakeTimers();
    ({ mqtt, registry } = await startFakeRegistry(topics));
  });
  afterEach(() => {
    registry.stop();
    vi.useRealTimers();
  });

  it('follows loads and unloads from heartbeats, in the entries and the panel', () => {
    mqtt.deliver(topics.status('a'), llamaStatus('a'));
    mqtt.deliver(topics.status('e'), echoStatus('e'));
    mqtt.deliver(topics.heartbeat('a'), beat('a'));
    mqtt.deliver(topics.heartbeat('e'), beat('e'));
    expect(registry.panel(10).fleet.models).toEqual({
      echo: { cpu: 1, gpu: 0, local: false, loaded: 0 },
      small: { cpu: 1, gpu: 0, local: true, loaded: 0 },
      tiny: { cpu: 1, gpu: 0, local: true, loaded: 0 },
    });
    const change = vi.fn();
    registry.on('change', change);
    mqtt.deliver(topics.heartbeat('a'), beat('a', { loaded: [loaded('tiny')] }));
    expect(change).toHaveBeenCalledTimes(1);
    expect(registry.panel(10).fleet.models.tiny).toEqual({
      cpu: 1,
      gpu: 0,
      local: true,
      loaded: 1,
    });
    expect(registry.modelEntries().find((m) => m.name === 'tiny')?.loadedIds).toEqual(['a']);
    // The same model still loaded: nothing to redraw.
    mqtt.deliver(topics.heartbeat('a'), beat('a', { loaded: [loaded('tiny', 101)] }));
    expect(change).toHaveBeenCalledTimes(1);
    mqtt.deliver(topics.heartbeat('a'), beat('a', { loaded: [] }));
    expect(change).toHaveBeenCalledTimes(2);
    expect(registry.panel(10).fleet.models.tiny?.loaded).toBe(0);
  });

  it('knows which models some worker advertises, online or offline', () => {
    mqtt.deliver(topics.status('a'), llamaStatus('a'));
    mqtt.deliver(topics.status('a'), { state: 'offline', id: 'a', reason: 'shutdown' });
    expect(registry.advertises('tiny')).toBe(true);
    expect(registry.advertises('nope')).toBe(false);
    expect(registry.modelEntries()).toEqual([]);
  });
});
