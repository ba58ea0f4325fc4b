/**
 * Lock renewal for many running tasks in one store call per queue, on Redis
 * and on the embedded PostgreSQL: a held lock is extended, a lost one (the
 * task finished, or another holder's token) is reported, per task.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueueStore, type QueueStore } from '../../../master/src/store/index.ts';
import { type HeldTask, TaskStore } from '../../../master/src/store/task-store.ts';
import type { TaskJobData } from '../../../master/src/tasks/task-data.ts';
import { type QueueKey, taskIdFor } from '../../../proto/src/queues.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';

const log = pino({ level: 'silent' });
const echo: QueueKey = { capability: 'any', model: 'echo' };
const other: QueueKey = { capability: 'gpu', model: 'echo' };
const TAKER = { lockDurationMs: 15_000, stalledCheckMs: 5_000, maxStalls: 2 };

let redis: RedisServer;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function task(key: QueueKey, n: number): TaskJobData {
  return {
    taskId: taskIdFor(key, `lock${n}`),
    prompt: `p${n}`,
    model: key.model,
    gpu: key.capability === 'gpu',
    params: {},
    priority: 0,
    submittedAt: Date.now(),
    timeoutMs: 60_000,
  };
}

async function takeAll(store: TaskStore, key: QueueKey, count: number): Promise<HeldTask[]> {
  const taker = store.taker(key, TAKER);
  const held: HeldTask[] = [];
  for (let i = 0; i < count; i += 1) {
    const h = await taker.take(`token-${key.capability}-${i}-${Date.now()}`);
    if (h) held.push(h);
  }
  return held;
}

async function renewal(queueStore: QueueStore): Promise<void> {
  const store = new TaskStore(queueStore);
  for (let n = 0; n < 3; n += 1) {
    await store.queue(echo).add(task(echo, n), { order: 1, attempts: 1 });
  }
  await store.queue(other).add(task(other, 9), { order: 1, attempts: 1 });
  const held = [...(await takeAll(store, echo, 3)), ...(await takeAll(store, other, 1))];
  expect(held).toHaveLength(4);

  // All four held: nothing lost, in one call for each of the two queues.
  expect(await store.extendLocks(held, 20_000)).toEqual(new Set());

  // One finishes (its lock goes with it); the others stay held.
  const [done, ...running] = held as [HeldTask, ...HeldTask[]];
  await done.complete({
    text: 'done',
    attempt: done.attempt,
    assignedAt: 0,
    startedAt: 0,
    finishedAt: 0,
    processingMs: 0,
    committedAt: Date.now(),
  });
  expect(await store.extendLocks(held, 20_000)).toEqual(new Set([done]));
  expect(await store.extendLocks(running, 20_000)).toEqual(new Set());

  // A master that just started adopts a running task before it has a taker for its queue.
  const first = running[0] as HeldTask;
  const restarted = new TaskStore(queueStore);
  const adopted = await restarted.queue(echo).adopt(first.taskId, first.token, 20_000);
  expect(typeof adopted).toBe('object');
  expect(await restarted.extendLocks([adopted as HeldTask], 20_000)).toEqual(new Set());
  const stolen = await restarted.queue(echo).adopt(first.taskId, 'not-its-token', 20_000);
  expect(stolen).toBe('stale');
}

describe('lock renewal in one call per queue', () => {
  it('on Redis', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'flota-locks-'));
    dirs.push(dataDir);
    const queueStore = await openQueueStore({
      url: redis.url,
      dataDir,
      namespace: randomName('flota'),
      log,
    });
    try {
      await renewal(queueStore);
    } finally {
      await queueStore.close();
    }
  });

  it('on the embedded PostgreSQL', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'flota-locks-pg-'));
    dirs.push(dataDir);
    const queueStore = await openQueueStore({ dataDir, namespace: randomName('flota'), log });
    try {
      await renewal(queueStore);
    } finally {
      await queueStore.close();
    }
  }, 60_000);
});
