/**
 * The history recorder on a real Redis: task events become a few batched
 * writes (not one per event), a store that goes away only makes records
 * wait (the oldest dropped past the bound, counted) and never throws at the
 * task's code, and records past the retention are trimmed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HistoryRecorder, MAX_BUFFERED } from '../../../master/src/history/recorder.ts';
import type { HistoryUpdate } from '../../../master/src/store/history-records.ts';
import { openQueueStore, type QueueStore } from '../../../master/src/store/index.ts';
import type { StoreHistory } from '../../../master/src/store/types.ts';
import type { TaskJobData } from '../../../master/src/tasks/task-data.ts';
import { TaskEvents, TaskRecordEvents } from '../../../master/src/tasks/task-events.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;
let redis: RedisServer;
let dataDir: string;
const closing: Array<() => Promise<void>> = [];

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'flota-recorder-'));
});

afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

afterAll(async () => {
  await redis?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** The store's history, with every write() counted (the writes themselves reach Redis). */
interface Counted {
  store: QueueStore;
  history: StoreHistory;
  writes: number[];
}

async function openCounted(): Promise<Counted> {
  const store = await openQueueStore({ url: redis.url, dataDir, namespace: randomName('r'), log });
  closing.push(() => store.close());
  const writes: number[] = [];
  const history: StoreHistory = {
    ...store.history,
    write: (updates: readonly HistoryUpdate[]) => {
      writes.push(updates.length);
      return store.history.write(updates);
    },
  };
  return { store, history, writes };
}

function startRecorder(history: StoreHistory, retentionMs = 168 * HOUR) {
  const events = new TaskEvents();
  const records = new TaskRecordEvents();
  const recorder = new HistoryRecorder({ history, events, records, retentionMs, log });
  recorder.start();
  closing.push(() => recorder.close());
  return { recorder, events, records };
}

const data = (n: number, at = Date.now()): TaskJobData => ({
  taskId: `any.echo.r${n}`,
  prompt: `prompt ${n}`,
  model: 'echo',
  gpu: false,
  params: {},
  priority: 0,
  submittedAt: at,
  timeoutMs: 60_000,
  tenant: 'acme',
});

describe('HistoryRecorder', () => {
  it('writes many events as a few batches, each task once per batch', async () => {
    const { history, writes } = await openCounted();
    const { recorder, events, records } = startRecorder(history);
    const tasks = 1_200;
    for (let n = 0; n < tasks; n += 1) {
      records.emit('submitted', data(n));
      events.emit('assigned', undefined, {
        taskId: `any.echo.r${n}`,
        attempt: 1,
        workerId: 'w1',
        workerKind: 'cpu',
      });
    }
    await waitFor(
      async () => (await history.page({ limit: 500, state: 'running' })).tasks.length === 500,
      {
        what: 'the running tasks in the store',
      },
    );
    await recorder.flush();
    // A task whose events straddle a flush is in two batches; never more.
    const written = writes.reduce((a, b) => a + b, 0);
    expect(writes.length).toBeLessThanOrEqual(4);
    expect(written).toBeGreaterThanOrEqual(tasks);
    expect(written).toBeLessThanOrEqual(tasks + writes.length);
    const timeline = await history.timeline('any.echo.r7');
    expect(timeline?.events.map((e) => e.kind)).toEqual(['queued', 'assigned']);
    expect(timeline?.task).toMatchObject({ state: 'running', workerId: 'w1', attempts: 1 });
  });

  it('keeps records while the store is away, drops the oldest past the bound, and writes the rest once it is back', async () => {
    const { store, history } = await openCounted();
    const { recorder, records } = startRecorder(history);
    records.emit('submitted', data(-1));
    await recorder.flush();
    redis.kill();
    await waitFor(async () => !(await store.ping()), { what: 'the store unreachable' });
    const extra = 5;
    for (let n = 0; n < MAX_BUFFERED + extra; n += 1) {
      expect(() => records.emit('submitted', data(n))).not.toThrow();
    }
    // The batch that was being written comes back when its write fails: then the bound applies.
    await waitFor(() => recorder.dropped === extra, { what: 'the oldest dropped' });
    await redis.restart();
    await waitFor(
      async () => (await history.timeline(`any.echo.r${MAX_BUFFERED + extra - 1}`)) !== undefined,
      { what: 'the buffered records written', timeoutMs: 30_000 },
    );
    expect(await history.timeline(`any.echo.r${extra}`)).toBeDefined();
    expect(await history.timeline(`any.echo.r${extra - 1}`)).toBeUndefined();
  }, 60_000);

  it('trims records older than the retention when it starts', async () => {
    const { history } = await openCounted();
    const old = Date.now() - 3 * HOUR;
    await history.write([
      { id: 'any.echo.old', submittedAt: old, state: 'queued', stateAt: old, events: [] },
      { id: 'any.echo.new', submittedAt: Date.now(), state: 'queued', stateAt: old, events: [] },
    ]);
    startRecorder(history, 2 * HOUR);
    await waitFor(async () => (await history.timeline('any.echo.old')) === undefined, {
      what: 'the old record trimmed',
    });
    expect(await history.timeline('any.echo.new')).toBeDefined();
  });
});
