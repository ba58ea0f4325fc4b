/**
 * Each alert rule fires after its hold time and not before, and resolves
 * when its condition is gone: a real SeriesRecorder, AlertEngine and
 * WorkerRegistry (on a stand-in MQTT client), the clock faked, the queue
 * depths and task events chosen by the test.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlertEngine, MAX_RECENT } from '../../../master/src/alerts/alert-engine.ts';
import { type AlertThresholds, alertThresholdsOf } from '../../../master/src/alerts/rules.ts';
import { loadMasterConfig } from '../../../master/src/config.ts';
import { SeriesRecorder } from '../../../master/src/monitor/series.ts';
import type { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import { TaskEvents } from '../../../master/src/tasks/task-events.ts';
import type { Alert } from '../../../proto/src/schemas/console.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { type FakeMqtt, startFakeRegistry } from './fake-registry.ts';

const topics = createTopics();
const log = pino({ level: 'silent' });
/** The defaults, as a master without ALERT_* variables has them. */
const DEFAULTS = alertThresholdsOf(loadMasterConfig({}));

const online = (id: string, models = ['echo'], kind: 'cpu' | 'gpu' = 'cpu', startedAt = 1) => ({
  state: 'online',
  id,
  kind,
  models,
  providers: ['echo'],
  slots: 2,
  labels: {},
  version: 't',
  host: 'h',
  startedAt,
  // No heartbeats in these tests: a minute's period keeps the worker alive for three.
  heartbeatMs: 60_000,
});
const offline = (id: string, reason: 'lost' | 'shutdown', startedAt = 1) => ({
  state: 'offline',
  id,
  reason,
  startedAt,
});

const task = (state: TaskView['state'], totalMs = 100): TaskView =>
  ({
    id: 'any.echo.abc',
    state,
    model: 'echo',
    priority: 5,
    requires: { gpu: false },
    attempt: 1,
    timings: { submittedAt: Date.now() - totalMs, totalMs },
  }) as TaskView;

let mqtt: FakeMqtt;
let registry: WorkerRegistry;
let events: TaskEvents;
let series: SeriesRecorder;
let engine: AlertEngine;
let queues: Record<string, Record<string, number>>;
let changes: Alert[];

async function start(overrides: Partial<AlertThresholds> = {}) {
  ({ mqtt, registry } = await startFakeRegistry(topics));
  events = new TaskEvents();
  series = new SeriesRecorder({
    events,
    registry,
    tasks: { queueCounts: async () => structuredClone(queues) },
    log,
  });
  engine = new AlertEngine({
    series,
    events,
    registry,
    thresholds: { ...DEFAULTS, ...overrides },
    log,
  });
  changes = [];
  engine.on('change', (alert) => changes.push(alert));
  series.start();
  engine.start();
}

/** Whole seconds of the fake clock, each ending in a point and an evaluation. */
const seconds = (n: number) => vi.advanceTimersByTimeAsync(n * 1000);
const firingIds = () => engine.current().firing.map((a) => a.id);

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00.000Z') });
  queues = {};
});

afterEach(() => {
  engine?.close();
  series?.close();
  registry?.stop();
  vi.useRealTimers();
});

describe('the defaults', () => {
  it('are the production ones the docs and alerts.yml give', () => {
    expect(DEFAULTS).toEqual({
      workerDownMs: 30_000,
      backlogTasks: 100,
      backlogMs: 60_000,
      backlogPerQueue: false,
      windowMs: 300_000,
      errorRate: 0.2,
      minTasks: 20,
      p95Ms: 30_000,
      noWorkerMs: 30_000,
    });
  });
});

describe('backlog', () => {
  it('fires after ALERT_BACKLOG_SECONDS above the bound, and resolves below it', async () => {
    await start();
    mqtt.deliver(topics.status('w1'), online('w1'));
    queues = { 'tasks.any.echo': { prioritized: 120, waiting: 0, delayed: 1, active: 2 } };
    await seconds(60);
    expect(firingIds()).toEqual([]);
    await seconds(2);
    expect(firingIds()).toEqual(['backlog:all']);
    const [fired] = changes;
    expect(fired).toMatchObject({
      id: 'backlog:all',
      rule: 'backlog',
      subject: 'all',
      state: 'firing',
      severity: 'warning',
      value: 121,
    });
    expect(fired?.message).toBe('121 tasks queued in all queues, more than 100');

    queues = { 'tasks.any.echo': { prioritized: 100 } };
    await seconds(2);
    expect(firingIds()).toEqual([]);
    expect(changes.map((c) => c.state)).toEqual(['firing', 'resolved']);
    const [resolved] = engine.current().recent;
    expect(resolved).toMatchObject({ id: 'backlog:all', state: 'resolved' });
    expect(resolved?.resolvedAt).toBeGreaterThan(resolved?.firedAt ?? Infinity);
  });

  it('counts the total of all queues, or each queue with ALERT_BACKLOG_PER_QUEUE', async () => {
    await start({ backlogTasks: 10, backlogMs: 0 });
    mqtt.deliver(topics.status('w1'), online('w1', ['a', 'b']));
    queues = { 'tasks.any.a': { waiting: 6 }, 'tasks.any.b': { prioritized: 6 } };
    await seconds(2);
    expect(firingIds()).toEqual(['backlog:all']);
    engine.close();
    series.close();
    registry.stop();

    await start({ backlogTasks: 10, backlogMs: 0, backlogPerQueue: true });
    mqtt.deliver(topics.status('w1'), online('w1', ['a', 'b']));
    queues = { 'tasks.any.a': { waiting: 11 }, 'tasks.any.b': { prioritized: 6 } };
    await seconds(2);
    expect(firingIds()).toEqual(['backlog:tasks.any.a']);
  });

  it('is off with ALERT_BACKLOG_TASKS=0', async () => {
    await start({ backlogTasks: 0, backlogMs: 0 });
    mqtt.deliver(topics.status('w1'), online('w1'));
    queues = { 'tasks.any.echo': { waiting: 1_000_000 } };
    await seconds(5);
    expect(firingIds()).toEqual([]);
  });

  it(`keeps the last ${MAX_RECENT} resolved alerts, newest first`, async () => {
    await start({ backlogTasks: 1, backlogMs: 0, noWorkerMs: 0 });
    for (let i = 0; i < MAX_RECENT + 5; i++) {
      queues = { 'tasks.any.echo': { waiting: 2 } };
      await seconds(1);
      queues = {};
      await seconds(1);
    }
    await seconds(1);
    const { firing, recent } = engine.current();
    expect(firing).toEqual([]);
    expect(recent).toHaveLength(MAX_RECENT);
    expect(recent[0]?.resolvedAt).toBeGreaterThan(recent[1]?.resolvedAt ?? Infinity);
  });
});

describe('worker_down', () => {
  it('fires for a worker lost ALERT_WORKER_DOWN_SECONDS ago and resolves when it is back', async () => {
    await start();
    mqtt.deliver(topics.status('w1'), online('w1'));
    await seconds(2);
    mqtt.deliver(topics.status('w1'), offline('w1', 'lost'));
    await seconds(29);
    expect(firingIds()).toEqual([]);
    await seconds(2);
    expect(firingIds()).toEqual(['worker_down:w1']);
    expect(changes[0]).toMatchObject({ rule: 'worker_down', subject: 'w1', state: 'firing' });

    mqtt.deliver(topics.status('w1'), online('w1', ['echo'], 'cpu', 2));
    await seconds(1);
    expect(firingIds()).toEqual([]);
    expect(changes.map((c) => `${c.id} ${c.state}`)).toEqual([
      'worker_down:w1 firing',
      'worker_down:w1 resolved',
    ]);
  });

  it('resolves when the registry forgets the worker', async () => {
    await start();
    mqtt.deliver(topics.status('w1'), online('w1'));
    await seconds(1);
    mqtt.deliver(topics.status('w1'), offline('w1', 'lost'));
    await seconds(31);
    expect(firingIds()).toEqual(['worker_down:w1']);
    await seconds(10 * 60);
    expect(registry.get('w1')).toBeUndefined();
    expect(firingIds()).toEqual([]);
    expect(engine.current().recent[0]).toMatchObject({ id: 'worker_down:w1' });
  });

  it('says nothing of a clean stop (a scale-down, an upgrade)', async () => {
    await start();
    mqtt.deliver(topics.status('w1'), online('w1'));
    await seconds(1);
    mqtt.deliver(topics.status('w1'), offline('w1', 'shutdown'));
    await seconds(60);
    expect(changes).toEqual([]);
  });
});

describe('error_rate', () => {
  it('fires above ALERT_ERROR_RATE with ALERT_MIN_TASKS finished, not for cancellations', async () => {
    await start();
    await seconds(1);
    for (let i = 0; i < 15; i++) events.emit('completed', undefined, task('completed'));
    for (let i = 0; i < 4; i++) events.emit('failed', undefined, task('failed'));
    for (let i = 0; i < 50; i++) events.emit('failed', undefined, task('cancelled'));
    await seconds(2);
    // 19 finished: below ALERT_MIN_TASKS, whatever the share.
    expect(firingIds()).toEqual([]);

    events.emit('failed', undefined, task('failed'));
    await seconds(1);
    expect(firingIds()).toEqual(['error_rate:fleet']);
    expect(changes[0]).toMatchObject({ severity: 'critical', value: 0.25 });

    // 15 of 20 completed is 25 %; 40 more completed make it 5 of 60.
    for (let i = 0; i < 40; i++) events.emit('completed', undefined, task('completed'));
    await seconds(1);
    expect(firingIds()).toEqual([]);
  });

  it('forgets failures older than the window', async () => {
    await start({ minTasks: 1 });
    await seconds(1);
    events.emit('failed', undefined, task('failed'));
    await seconds(1);
    expect(firingIds()).toEqual(['error_rate:fleet']);
    await seconds(299);
    expect(firingIds()).toEqual(['error_rate:fleet']);
    await seconds(2);
    expect(firingIds()).toEqual([]);
  });
});

describe('latency_p95', () => {
  it('fires when p95 over the window is above ALERT_P95_MS', async () => {
    await start();
    await seconds(1);
    for (let i = 0; i < 18; i++) events.emit('completed', undefined, task('completed', 100));
    for (let i = 0; i < 2; i++) events.emit('completed', undefined, task('completed', 40_000));
    await seconds(1);
    // p95 of 20: the 19th, a 40 s task.
    expect(firingIds()).toEqual(['latency_p95:fleet']);
    const value = changes[0]?.value ?? 0;
    expect(value).toBeGreaterThanOrEqual(40_000);
    expect(value).toBeLessThanOrEqual(42_000);

    for (let i = 0; i < 80; i++) events.emit('completed', undefined, task('completed', 100));
    await seconds(1);
    expect(firingIds()).toEqual([]);
  });

  it('waits for ALERT_MIN_TASKS and is off with ALERT_P95_MS=0', async () => {
    await start();
    await seconds(1);
    for (let i = 0; i < 19; i++) events.emit('completed', undefined, task('completed', 60_000));
    await seconds(1);
    expect(firingIds()).toEqual([]);
    engine.close();
    series.close();
    registry.stop();

    await start({ p95Ms: 0, minTasks: 1 });
    await seconds(1);
    events.emit('completed', undefined, task('completed', 60_000));
    await seconds(1);
    expect(firingIds()).toEqual([]);
  });
});

describe('no_worker_for_model', () => {
  it('fires after ALERT_NO_WORKER_SECONDS for a model no online worker serves', async () => {
    await start();
    mqtt.deliver(topics.status('w1'), online('w1', ['echo']));
    queues = { 'tasks.any.echo': { waiting: 3 }, 'tasks.any.llama3~8b': { prioritized: 2 } };
    // Depths read at one tick are the next point's: the condition holds from the 2nd second.
    await seconds(31);
    expect(firingIds()).toEqual([]);
    await seconds(2);
    expect(firingIds()).toEqual(['no_worker_for_model:llama3:8b']);
    expect(changes[0]).toMatchObject({ severity: 'critical', value: 2 });

    mqtt.deliver(topics.status('w2'), online('w2', ['llama3:8b']));
    await seconds(1);
    expect(firingIds()).toEqual([]);
  });

  it('counts a GPU queue with only CPU workers as unserved', async () => {
    await start({ noWorkerMs: 1_000 });
    mqtt.deliver(topics.status('w1'), online('w1', ['echo']));
    queues = { 'tasks.gpu.echo': { waiting: 1 } };
    await seconds(3);
    expect(firingIds()).toEqual(['no_worker_for_model:echo']);
    mqtt.deliver(topics.status('g1'), online('g1', ['echo'], 'gpu'));
    await seconds(1);
    expect(firingIds()).toEqual([]);
  });
});
