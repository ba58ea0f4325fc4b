/**
 * The live series: one point per second from task events, the registry and
 * the queue depths (one store call at a time), kept in a bounded ring; its
 * CSV form; the bounded latency samples and window behind the quantiles.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LatencyWindow } from '../../../master/src/alerts/latency-window.ts';
import { seriesCsv } from '../../../master/src/http/series-csv.ts';
import { LatencySamples, quantile } from '../../../master/src/monitor/latency-samples.ts';
import { queuedOf, SeriesRecorder } from '../../../master/src/monitor/series.ts';
import type { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import { TaskEvents } from '../../../master/src/tasks/task-events.ts';
import type { SeriesPoint } from '../../../proto/src/schemas/console.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { type FakeMqtt, startFakeRegistry } from './fake-registry.ts';

const topics = createTopics();
const log = pino({ level: 'silent' });
const START = Date.parse('2026-01-01T00:00:00.000Z');

const task = (state: TaskView['state'], totalMs: number, ttftMs?: number): TaskView =>
  ({
    id: 'any.echo.abc',
    state,
    model: 'echo',
    priority: 5,
    requires: { gpu: false },
    attempt: 1,
    timings: { submittedAt: 0, totalMs, ttftMs },
  }) as TaskView;

let mqtt: FakeMqtt;
let registry: WorkerRegistry;
let events: TaskEvents;
let series: SeriesRecorder;
let queueCounts: () => Promise<Record<string, Record<string, number>>>;
let points: SeriesPoint[];

async function start(capacity?: number) {
  ({ mqtt, registry } = await startFakeRegistry(topics));
  events = new TaskEvents();
  series = new SeriesRecorder({
    events,
    registry,
    tasks: { queueCounts: () => queueCounts() },
    log,
    capacity,
  });
  points = [];
  series.on('point', (p) => points.push(p));
  series.start();
}

beforeEach(() => {
  vi.useFakeTimers({ now: START });
  queueCounts = async () => ({});
});

afterEach(() => {
  series?.close();
  registry?.stop();
  vi.useRealTimers();
});

describe('SeriesRecorder', () => {
  it('makes one point per second with that second’s tasks, the fleet and the queues', async () => {
    queueCounts = async () => ({
      'tasks.any.echo': { waiting: 2, prioritized: 3, delayed: 1, active: 4, completed: 9 },
    });
    await start();
    mqtt.deliver(topics.status('w1'), {
      state: 'online',
      id: 'w1',
      kind: 'cpu',
      models: ['echo'],
      providers: ['echo'],
      slots: 4,
      labels: {},
      version: 't',
      host: 'h',
      startedAt: 1,
      heartbeatMs: 60_000,
    });
    registry.reserve('w1', 'any.echo.t1', 1);
    for (const ms of [100, 200, 300, 400])
      events.emit('completed', undefined, task('completed', ms, ms / 2));
    events.emit('failed', undefined, task('failed', 50));
    events.emit('failed', undefined, task('cancelled', 50));
    events.emit('retrying', undefined, { id: 'any.echo.t2', attempt: 1 } as never);
    await vi.advanceTimersByTimeAsync(1_000);

    expect(points).toHaveLength(1);
    expect(points[0]).toEqual({
      at: START,
      completed: 4,
      failed: 1,
      retried: 1,
      latencyP50Ms: 200,
      latencyP95Ms: 400,
      ttftP50Ms: 100,
      queued: { 'tasks.any.echo': 6 },
      slots: 4,
      busy: 1,
      workersOnline: 1,
    });
    expect(series.latest()).toBe(points[0]);

    await vi.advanceTimersByTimeAsync(1_000);
    // Nothing finished this second; the quantiles still cover the last ten.
    expect(points[1]).toMatchObject({ at: START + 1_000, completed: 0, latencyP95Ms: 400 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(series.latest()?.latencyP95Ms).toBeUndefined();
  });

  it('never asks the store for depths twice at once', async () => {
    let calls = 0;
    let answer: ((counts: Record<string, Record<string, number>>) => void) | undefined;
    queueCounts = () => {
      calls += 1;
      return new Promise((resolve) => {
        answer = resolve;
      });
    };
    await start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(points).toHaveLength(5);
    expect(calls).toBe(1);
    answer?.({ 'tasks.any.echo': { waiting: 7 } });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(series.latest()?.queued).toEqual({ 'tasks.any.echo': 7 });
    expect(calls).toBe(2);
  });

  it('keeps the depths it last read while the store fails', async () => {
    queueCounts = async () => ({ 'tasks.any.echo': { waiting: 3 } });
    await start();
    await vi.advanceTimersByTimeAsync(2_000);
    queueCounts = async () => {
      throw new Error('store away');
    };
    await vi.advanceTimersByTimeAsync(3_000);
    expect(points).toHaveLength(5);
    expect(series.latest()?.queued).toEqual({ 'tasks.any.echo': 3 });
  });

  it('names each point by its second, one after another, when the timer fires a little early', async () => {
    await start();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(1_000);
      // A timer may fire a millisecond before its boundary: the clock reads the second before.
      vi.setSystemTime(Date.now() - 1);
    }
    await vi.advanceTimersByTimeAsync(3_000);
    const ats = points.map((p) => p.at);
    expect(ats.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < ats.length; i++) {
      expect((ats[i] as number) - (ats[i - 1] as number)).toBe(1_000);
    }
  });

  it('keeps the last `capacity` points, oldest first, and reads them from a second on', async () => {
    await start(5);
    await vi.advanceTimersByTimeAsync(8_000);
    const kept = series.points();
    expect(kept.map((p) => p.at)).toEqual([3, 4, 5, 6, 7].map((s) => START + s * 1_000));
    expect(series.points(START + 6_000).map((p) => p.at)).toEqual([START + 6_000, START + 7_000]);
    series.close();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(series.points()).toHaveLength(5);
  });
});

describe('queuedOf', () => {
  it('counts waiting, prioritized and delayed tasks, not running or finished ones', () => {
    expect(
      queuedOf({ a: { waiting: 1, prioritized: 2, delayed: 3, active: 4, completed: 5 }, b: {} }),
    ).toEqual({ a: 6, b: 0 });
  });
});

describe('seriesCsv', () => {
  it('writes a header and a row per point, a column per queue, quoting what needs it', () => {
    const point = (at: number, queued: Record<string, number>): SeriesPoint => ({
      at,
      completed: 2,
      failed: 1,
      retried: 0,
      latencyP50Ms: 12.5,
      queued,
      slots: 4,
      busy: 1,
      workersOnline: 2,
    });
    const csv = seriesCsv([
      point(START, { 'tasks.any.echo': 3 }),
      { ...point(START + 15_000, { 'tasks.any.echo@tier=gold,zone=eu': 1 }), seconds: 15 },
    ]);
    expect(csv.split('\r\n')).toEqual([
      'at,time,seconds,completed,failed,retried,latencyP50Ms,latencyP95Ms,ttftP50Ms,slots,busy,workersOnline,queued:tasks.any.echo,"queued:tasks.any.echo@tier=gold,zone=eu"',
      `${START},2026-01-01T00:00:00.000Z,1,2,1,0,12.5,,,4,1,2,3,0`,
      `${START + 15_000},2026-01-01T00:00:15.000Z,15,2,1,0,12.5,,,4,1,2,0,1`,
      '',
    ]);
  });
});

describe('latency quantiles', () => {
  it('LatencySamples keeps at most its bound, replacing at random past it', () => {
    const samples = new LatencySamples(3, () => 0);
    for (const ms of [1, 2, 3, 4, 5]) samples.add(ms);
    expect(samples.values()).toEqual([5, 2, 3]);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.95)).toBe(4);
    expect(quantile([], 0.5)).toBeUndefined();
  });

  it('LatencyWindow gives quantiles within 5 % over its window, and forgets older seconds', () => {
    const window = new LatencyWindow(10_000);
    for (let i = 1; i <= 100; i++) window.add(i * 100, START);
    const p95 = window.quantile(0.95, START) ?? 0;
    expect(p95).toBeGreaterThanOrEqual(9_500);
    expect(p95).toBeLessThanOrEqual(9_500 * 1.05);
    expect(window.count(START + 9_999)).toBe(100);
    window.add(1, START + 10_500);
    // A second is counted while any of it is inside the window.
    expect(window.count(START + 10_999)).toBe(101);
    expect(window.count(START + 11_000)).toBe(1);
    expect(window.quantile(0.5, START + 11_000)).toBe(1);
    expect(window.quantile(0.5, START + 30_000)).toBeUndefined();
  });
});
