/**
 * What keeps a large fleet cheap: heartbeats that change nothing a person
 * sees ask for no redraw, ids stay sorted without sorting, and the registry
 * counts how late it applies heartbeats.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_WORKER_SERIES, MasterMetrics } from '../../../master/src/metrics/master-metrics.ts';
import {
  HEARTBEAT_LAG_BUCKETS_MS,
  HeartbeatMeter,
} from '../../../master/src/registry/heartbeat-meter.ts';
import { STATUS_REFETCH_MS, type WorkerRegistry } from '../../../master/src/registry/registry.ts';
import { samePanelLoad, type WorkerRecord } from '../../../master/src/registry/worker-record.ts';
import { WorkerTable } from '../../../master/src/registry/worker-table.ts';
import type { Heartbeat, WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { type FakeMqtt, startFakeRegistry } from './fake-registry.ts';

const topics = createTopics();
const status = (id: string, models = ['echo']): WorkerOnline => ({
  state: 'online',
  id,
  kind: 'cpu',
  models,
  providers: ['echo'],
  slots: 2,
  labels: {},
  weight: 1,
  version: 't',
  host: 'h',
  heartbeatMs: 1_000,
  startedAt: 1,
});
const beat = (id: string, over: Partial<Heartbeat> = {}): Heartbeat => ({
  id,
  ts: Date.now(),
  cpuPct: 10.2,
  mem: { usedPct: 40.4, totalMb: 1, rssMb: 1 },
  gpus: [],
  freeSlots: 2,
  active: [],
  draining: false,
  ...over,
});
const record = (id: string, models = ['echo']): WorkerRecord => ({
  status: status(id, models),
  state: 'online',
  lastSeen: 0,
  active: new Map(),
  holds: new Set(),
});

describe('samePanelLoad', () => {
  it('is false for a first heartbeat and for any change a person would see', () => {
    expect(samePanelLoad(undefined, beat('w'))).toBe(false);
    expect(samePanelLoad(beat('w'), beat('w', { cpuPct: 10.4, ts: 5 }))).toBe(true);
    expect(samePanelLoad(beat('w'), beat('w', { cpuPct: 11 }))).toBe(false);
    expect(
      samePanelLoad(beat('w'), beat('w', { mem: { usedPct: 41, totalMb: 1, rssMb: 1 } })),
    ).toBe(false);
    expect(samePanelLoad(beat('w'), beat('w', { draining: true }))).toBe(false);
    const gpu = { index: 0, name: 'g', utilPct: 50, memUsedMb: 100, memTotalMb: 200 };
    expect(samePanelLoad(beat('w', { gpus: [gpu] }), beat('w', { gpus: [gpu] }))).toBe(true);
    expect(
      samePanelLoad(beat('w', { gpus: [gpu] }), beat('w', { gpus: [{ ...gpu, utilPct: 60 }] })),
    ).toBe(false);
    expect(samePanelLoad(beat('w', { gpus: [gpu] }), beat('w'))).toBe(false);
  });
});

describe('WorkerTable', () => {
  it('keeps ids sorted as workers come, change models and go', () => {
    const table = new WorkerTable();
    for (const id of ['c', 'a', 'd', 'b']) table.set(record(id));
    expect(table.sorted().map((r) => r.status.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(table.capable({ model: 'echo', gpu: false }).map((r) => r.status.id)).toEqual([
      'a',
      'b',
      'c',
      'd',
    ]);
    table.set(record('b', ['other']));
    expect(table.capable({ model: 'echo', gpu: false }).map((r) => r.status.id)).toEqual([
      'a',
      'c',
      'd',
    ]);
    expect(table.capable({ model: 'other', gpu: false }).map((r) => r.status.id)).toEqual(['b']);
    table.delete('c');
    table.delete('b');
    expect(table.sorted().map((r) => r.status.id)).toEqual(['a', 'd']);
    expect([...table.models()].map(([model]) => model)).toEqual(['echo']);
    expect(table.size).toBe(2);
  });

  it('checks liveness and draining on every look, and the status only when it changes', () => {
    const table = new WorkerTable();
    const need = { model: 'echo', gpu: false, labels: { zone: 'eu' } };
    const eu = { ...record('a'), status: { ...status('a'), labels: { zone: 'eu' } } };
    table.set(eu);
    table.set(record('b'));
    expect(table.capable(need).map((r) => r.status.id)).toEqual(['a']);
    eu.state = 'offline';
    expect(table.capable(need)).toEqual([]);
    eu.state = 'online';
    eu.heartbeat = beat('a', { draining: true });
    expect(table.capable(need)).toEqual([]);
    eu.heartbeat = beat('a');
    expect(table.capable(need).map((r) => r.status.id)).toEqual(['a']);
    table.set({ ...record('b'), status: { ...status('b'), labels: { zone: 'eu' } } });
    expect(table.capable(need).map((r) => r.status.id)).toEqual(['a', 'b']);
    table.set(record('a'));
    expect(table.capable(need).map((r) => r.status.id)).toEqual(['b']);
  });
});

describe('HeartbeatMeter', () => {
  it('counts received and applied heartbeats and buckets their lag', () => {
    const meter = new HeartbeatMeter();
    meter.receive();
    meter.receive();
    meter.apply(1_000, 1_003); // 3 ms: the first bucket
    meter.apply(1_000, 1_000 + 60_000); // past every bound
    meter.apply(2_000, 1_000); // a worker ahead of the master: 0
    const counts = meter.counts();
    expect(counts.received).toBe(2);
    expect(counts.applied).toBe(3);
    expect(counts.lagSumMs).toBe(60_003);
    expect(counts.lagBuckets[0]).toBe(2);
    expect(counts.lagBuckets[HEARTBEAT_LAG_BUCKETS_MS.length]).toBe(1);
  });
});

describe('WorkerRegistry with a steady fleet (fake timers)', () => {
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

  it('asks for a redraw only when a heartbeat changes what the panel shows', () => {
    mqtt.deliver(topics.status('w1'), status('w1'));
    const change = vi.fn();
    registry.on('change', change);
    mqtt.deliver(topics.heartbeat('w1'), beat('w1'));
    expect(change).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1_000);
    mqtt.deliver(topics.heartbeat('w1'), beat('w1', { cpuPct: 10.3 }));
    expect(change).toHaveBeenCalledTimes(1);
    // lastSeen still moves: the worker stays alive and its listing says when it was heard.
    expect(registry.get('w1')?.lastSeen).toBe(Date.now());
    mqtt.deliver(topics.heartbeat('w1'), beat('w1', { cpuPct: 55 }));
    expect(change).toHaveBeenCalledTimes(2);
  });

  it('keeps one heartbeat object per worker, updated in place', () => {
    mqtt.deliver(topics.status('w1'), status('w1'));
    mqtt.deliver(topics.heartbeat('w1'), beat('w1'));
    const kept = registry.get('w1')?.heartbeat;
    const gpu = { index: 0, name: 'g', utilPct: 50, memUsedMb: 100, memTotalMb: 200 };
    mqtt.deliver(
      topics.heartbeat('w1'),
      beat('w1', {
        cpuPct: 70,
        mem: { usedPct: 5, totalMb: 2, rssMb: 3 },
        gpus: [gpu],
        draining: true,
      }),
    );
    const now = registry.get('w1')?.heartbeat;
    expect(now).toBe(kept);
    expect(now).toMatchObject({
      cpuPct: 70,
      mem: { usedPct: 5, totalMb: 2, rssMb: 3 },
      gpus: [gpu],
      draining: true,
    });
    expect(registry.capable({ model: 'echo', gpu: false })).toEqual([]);
  });

  it('asks the broker again for the status of a worker heard from but not known', async () => {
    mqtt.subscribeAsync.mockClear();
    mqtt.deliver(topics.heartbeat('lost'), beat('lost'));
    mqtt.deliver(topics.heartbeat('lost'), beat('lost'));
    expect(mqtt.subscribeAsync).toHaveBeenCalledTimes(1);
    expect(mqtt.subscribeAsync).toHaveBeenCalledWith(topics.status('lost'), { qos: 1 });
    await vi.waitFor(() =>
      expect(mqtt.unsubscribeAsync).toHaveBeenCalledWith(topics.status('lost')),
    );
    vi.advanceTimersByTime(STATUS_REFETCH_MS);
    mqtt.deliver(topics.heartbeat('lost'), beat('lost'));
    expect(mqtt.subscribeAsync).toHaveBeenCalledTimes(2);
    // The retained status it brings back makes the worker known; its heartbeats count again.
    mqtt.deliver(topics.status('lost'), status('lost'));
    mqtt.deliver(topics.heartbeat('lost'), beat('lost'));
    expect(mqtt.subscribeAsync).toHaveBeenCalledTimes(2);
    expect(registry.isOnline('lost')).toBe(true);
  });

  it('lists workers by id and the models of online workers only', () => {
    for (const id of ['w3', 'w1', 'w2']) mqtt.deliver(topics.status(id), status(id, [`m-${id}`]));
    expect(registry.views().map((v) => v.id)).toEqual(['w1', 'w2', 'w3']);
    mqtt.deliver(topics.status('w2'), { state: 'offline', id: 'w2', reason: 'shutdown' });
    expect(registry.models()).toEqual(['m-w1', 'm-w3']);
    expect(registry.size()).toBe(3);
  });

  it('gives the panel at most max workers, online first, and counts the whole fleet', () => {
    for (let i = 0; i < 30; i += 1) {
      const id = `w${String(i).padStart(2, '0')}`;
      mqtt.deliver(topics.status(id), {
        ...status(id),
        kind: i % 3 === 0 ? 'gpu' : 'cpu',
        slots: 4,
      });
    }
    mqtt.deliver(topics.status('a-gpu'), { ...status('a-gpu', ['llama3']), kind: 'gpu', slots: 4 });
    mqtt.deliver(topics.status('w00'), { state: 'offline', id: 'w00', reason: 'shutdown' });
    const panel = registry.panel(5);
    expect(panel.workers.map((w) => w.id)).toEqual(['a-gpu', 'w01', 'w02', 'w03', 'w04']);
    expect(panel.models).toEqual(['echo', 'llama3']);
    expect(panel.fleet).toEqual({
      online: 30,
      offline: 1,
      slots: 120,
      active: 0,
      models: {
        echo: { cpu: 20, gpu: 9, local: false, loaded: 0 },
        llama3: { cpu: 0, gpu: 1, local: false, loaded: 0 },
      },
    });
    // Fewer workers than the cap: every one, online first, then the offline.
    expect(registry.panel(100).workers.at(-1)?.id).toBe('w00');
  });

  it('meters every heartbeat received, and how late the applied ones were', () => {
    mqtt.deliver(topics.status('w1'), status('w1'));
    mqtt.deliver(topics.heartbeat('w1'), beat('w1', { ts: Date.now() - 30 }));
    mqtt.deliver(topics.heartbeat('ghost'), beat('ghost')); // unknown: received, not applied
    const counts = registry.heartbeats.counts();
    expect(counts).toMatchObject({ received: 2, applied: 1, lagSumMs: 30 });
  });

  it('exports the heartbeat counts and lag as Prometheus series', async () => {
    mqtt.deliver(topics.status('w1'), status('w1'));
    mqtt.deliver(topics.heartbeat('w1'), beat('w1', { ts: Date.now() - 30 }));
    const metrics = new MasterMetrics({
      events: new EventEmitter() as never,
      registry,
      tasks: { queueCounts: async () => ({}) } as never,
      results: { rejected: new Map() } as never,
    });
    const text = await metrics.registry.metrics();
    metrics.close();
    expect(text).toMatch(/^flota_heartbeats_total\{outcome="received"\} 1$/m);
    expect(text).toMatch(/^flota_heartbeats_total\{outcome="applied"\} 1$/m);
    expect(text).toMatch(/^# TYPE flota_heartbeat_lag_seconds histogram$/m);
    expect(text).toMatch(/^flota_heartbeat_lag_seconds_bucket\{le="0.025"\} 0$/m);
    expect(text).toMatch(/^flota_heartbeat_lag_seconds_bucket\{le="0.05"\} 1$/m);
    expect(text).toMatch(/^flota_heartbeat_lag_seconds_bucket\{le="\+Inf"\} 1$/m);
    expect(text).toMatch(/^flota_heartbeat_lag_seconds_sum 0.03$/m);
    expect(text).toMatch(/^flota_heartbeat_lag_seconds_count 1$/m);
    expect(text).toMatch(/^flota_workers\{state="online"\} 1$/m);
    expect(text).toMatch(/^flota_worker_slots\{worker="w1",kind="total"\} 2$/m);
    expect(text).toMatch(/^flota_fleet_slots\{kind="total"\} 2$/m);
  });

  it(`gives at most ${MAX_WORKER_SERIES} workers series of their own, and the fleet's totals always`, async () => {
    const fleet = MAX_WORKER_SERIES + 5;
    for (let i = 0; i < fleet; i++) {
      const id = `w${String(i).padStart(5, '0')}`;
      mqtt.deliver(topics.status(id), status(id));
    }
    const metrics = new MasterMetrics({
      events: new EventEmitter() as never,
      registry,
      tasks: { queueCounts: async () => ({}) } as never,
      results: { rejected: new Map() } as never,
    });
    const text = await metrics.registry.metrics();
    metrics.close();
    const series = text.match(/^flota_worker_slots\{worker="[^"]+",kind="total"\} /gm) ?? [];
    expect(series).toHaveLength(MAX_WORKER_SERIES);
    expect(text).toMatch(new RegExp(`^flota_fleet_slots\\{kind="total"\\} ${fleet * 2}$`, 'm'));
    expect(text).toMatch(new RegExp(`^flota_workers\\{state="online"\\} ${fleet}$`, 'm'));
  });
});
