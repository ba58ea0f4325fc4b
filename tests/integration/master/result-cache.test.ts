/**
 * The result cache with a real master, Redis and echo worker: an identical
 * second prompt is answered without the worker, marked as a hit and counted;
 * `cache: false` always runs; entries expire after CACHE_TTL_S; and they live
 * in the store, so they answer after a master restart with no worker at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { startEmbeddedPostgres } from '../../../master/src/store/embedded-postgres.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type CountingWorker, runTask, startCountingWorker, waitOnline } from './cache-support.ts';
import { SessionClient } from './session-client.ts';
import { api, startTestMaster } from './support.ts';

const ns = () => randomName('c').toLowerCase();

let redis: RedisServer;
let redisClient: Redis;
const masters: MasterHandle[] = [];
const workers: CountingWorker[] = [];
const clients: SessionClient[] = [];

async function master(env: Record<string, string>, queueUrl = redis.url): Promise<MasterHandle> {
  const m = await startTestMaster({ queueUrl, env });
  masters.push(m);
  return m;
}

async function worker(m: MasterHandle, id: string): Promise<CountingWorker> {
  const w = await startCountingWorker(m, id);
  workers.push(w);
  await waitOnline(m, id);
  return w;
}

beforeAll(async () => {
  redis = await startRedis();
  redisClient = new Redis(redis.url, { lazyConnect: true });
  await redisClient.connect();
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const w of workers) await w.handle.close();
  for (const m of masters) await m.close();
  redisClient?.disconnect();
  await redis?.stop();
});

describe('result cache on', () => {
  const namespace = ns();
  let first: MasterHandle;
  let w: CountingWorker;

  beforeAll(async () => {
    first = await master({ CACHE_TTL_S: '300', QUEUE_NAMESPACE: namespace });
    w = await worker(first, 'cache-w1');
  });

  it('answers an identical second prompt from the cache: no worker runs it, and it says so', async () => {
    const ran = await runTask(first, { prompt: 'the same question', model: 'echo' });
    expect(ran).toMatchObject({ state: 'completed', result: 'echo: the same question' });
    expect(ran.workerId).toBe('cache-w1');
    expect(ran.cache).toBeUndefined();

    const hit = await runTask(first, { prompt: 'the same question', model: 'echo' });
    expect(hit).toMatchObject({ state: 'completed', result: 'echo: the same question' });
    expect(hit.id).not.toBe(ran.id);
    expect(hit.cache?.hit).toBe(true);
    expect(hit.cache?.cachedAt).toBeGreaterThanOrEqual(ran.timings.finishedAt ?? 0);
    expect(hit.workerId).toBeUndefined();
    expect(hit.timings.processingMs).toBe(0);
    expect(w.runs.filter((p) => p === 'the same question')).toHaveLength(1);

    const { body } = await api<{ cache: { enabled: boolean; hits: number; misses: number } }>(
      first,
      '/api/metrics',
    );
    expect(body.cache).toEqual({ enabled: true, hits: 1, misses: 1 });
    const text = await (await fetch(`${first.httpUrl}/metrics`)).text();
    expect(text).toMatch(/^flota_cache_hits_total 1$/m);
    expect(text).toMatch(/^flota_cache_misses_total 1$/m);
  });

  it('delivers a hit to a chat session through the outbox like any task, with no assignment', async () => {
    const client = new SessionClient(first.httpUrl, 'cache-session-1');
    clients.push(client);
    await waitFor(() => client.epoch, { what: 'hello' });
    const firstId = await client.submit('asked twice in the chat');
    await client.waitTerminal(firstId);
    const secondId = await client.submit('asked twice in the chat');
    const done = await client.waitTerminal(secondId);

    expect(done.payload).toMatchObject({
      state: 'completed',
      result: 'echo: asked twice in the chat',
      cache: { hit: true },
    });
    const names = client.accepted
      .filter((e) => (e.payload.taskId ?? e.payload.id) === secondId)
      .map((e) => e.name);
    expect(names).toEqual(['task:queued', 'task:completed']);
    expect(w.runs.filter((p) => p === 'asked twice in the chat')).toHaveLength(1);
    const view = (await api<TaskView>(first, `/api/tasks/${secondId}`)).body;
    expect(view).toMatchObject({ state: 'completed', cache: { hit: true } });
  });

  it('runs a request that says cache: false, and keeps nothing of it', async () => {
    const prompt = 'always fresh';
    const a = await runTask(first, { prompt, cache: false });
    const b = await runTask(first, { prompt, cache: false });
    expect([a.cache, b.cache]).toEqual([undefined, undefined]);
    expect(w.runs.filter((p) => p === prompt)).toHaveLength(2);
    // Nothing was stored: the first cacheable request is a miss, the next one a hit.
    const c = await runTask(first, { prompt });
    expect(c.cache).toBeUndefined();
    const d = await runTask(first, { prompt });
    expect(d.cache?.hit).toBe(true);
    expect(w.runs.filter((p) => p === prompt)).toHaveLength(3);
  });

  it('misses when the parameters or the history differ', async () => {
    const prompt = 'depends on params';
    await runTask(first, { prompt, params: { temperature: 0.1 } });
    const other = await runTask(first, { prompt, params: { temperature: 0.9 } });
    const withHistory = await runTask(first, {
      prompt,
      params: { temperature: 0.1 },
      messages: [{ role: 'user', content: 'earlier' }],
    });
    const same = await runTask(first, { prompt, params: { temperature: 0.1 } });
    expect([other.cache, withHistory.cache]).toEqual([undefined, undefined]);
    expect(same.cache?.hit).toBe(true);
    expect(w.runs.filter((p) => p === prompt)).toHaveLength(3);
  });

  it('answers from the store after a master restart, with no worker online', async () => {
    await w.handle.close();
    await first.close();
    const second = await master({ CACHE_TTL_S: '300', QUEUE_NAMESPACE: namespace });
    const { body } = await api<{ workers: unknown[] }>(second, '/api/workers');
    expect(body.workers).toEqual([]);
    const hit = await runTask(second, { prompt: 'the same question', model: 'echo' });
    expect(hit).toMatchObject({
      state: 'completed',
      result: 'echo: the same question',
      cache: { hit: true },
    });
  });
});

describe('result cache expiry and default', () => {
  it('forgets an answer once CACHE_TTL_S has passed', async () => {
    const namespace = ns();
    const m = await master({ CACHE_TTL_S: '1', QUEUE_NAMESPACE: namespace });
    const w = await worker(m, 'ttl-w1');
    await runTask(m, { prompt: 'short-lived' });
    const [key] = await waitFor(async () => {
      const keys = await redisClient.keys(`${namespace}:kv:cache:*`);
      return keys.length > 0 ? keys : undefined;
    });
    const ttl = await redisClient.pttl(key as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_000);
    await waitFor(async () => (await redisClient.exists(key as string)) === 0, {
      what: 'the cache entry to expire',
    });
    const again = await runTask(m, { prompt: 'short-lived' });
    expect(again.cache).toBeUndefined();
    expect(w.runs.filter((p) => p === 'short-lived')).toHaveLength(2);
  });

  it('is off by default: identical prompts both run and nothing is stored', async () => {
    const namespace = ns();
    const m = await master({ QUEUE_NAMESPACE: namespace });
    const w = await worker(m, 'off-w1');
    const a = await runTask(m, { prompt: 'no cache here' });
    const b = await runTask(m, { prompt: 'no cache here' });
    expect([a.cache, b.cache]).toEqual([undefined, undefined]);
    expect(w.runs).toEqual(['no cache here', 'no cache here']);
    expect(await redisClient.keys(`${namespace}:kv:*`)).toEqual([]);
    const { body } = await api<{ cache: unknown }>(m, '/api/metrics');
    expect(body.cache).toEqual({ enabled: false, hits: 0, misses: 0 });
  });
});

describe('result cache on PostgreSQL', () => {
  it('answers from its table, also after a master restart with no worker online', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'flota-cache-pg-'));
    const pg = await startEmbeddedPostgres({
      dataDir,
      log: pino({ level: 'silent' }),
    });
    try {
      const env = { CACHE_TTL_S: '300', QUEUE_NAMESPACE: ns() };
      const first = await master(env, pg.connectionString);
      const w = await worker(first, 'pg-w1');
      await runTask(first, { prompt: 'kept in postgres' });
      expect((await runTask(first, { prompt: 'kept in postgres' })).cache?.hit).toBe(true);
      expect(w.runs).toEqual(['kept in postgres']);
      await w.handle.close();
      await first.close();

      const second = await master(env, pg.connectionString);
      const hit = await runTask(second, { prompt: 'kept in postgres' });
      expect(hit).toMatchObject({ result: 'echo: kept in postgres', cache: { hit: true } });
      await second.close();
    } finally {
      await pg.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
