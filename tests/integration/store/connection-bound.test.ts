/**
 * One store, one bounded set of server connections, however many queues: a
 * master serving 60 model names (a queue and a worker each) must not open
 * connections per queue, or PostgreSQL runs out and every request fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmbeddedPostgresServer,
  startEmbeddedPostgres,
} from '../../../master/src/store/embedded-postgres.ts';
import { openQueueStore, type QueueStore } from '../../../master/src/store/index.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const log = pino({ level: 'silent' });
const QUEUES = 60;
const POOL_SIZE = 5;
const TOKEN = 'bound-token';
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const tempDir = async (label: string) => {
  const dir = await mkdtemp(join(tmpdir(), `flota-store-${label}-`));
  dirs.push(dir);
  return dir;
};

/** A queue and a worker per name, each used once (a job added and taken), all at the same time. */
async function openManyQueues(store: QueueStore): Promise<void> {
  const names = Array.from({ length: QUEUES }, (_, i) => `${randomName('model')}_${i}`);
  await Promise.all(
    names.map(async (name, n) => {
      const queue = store.createQueue<{ n: number }, string>(name);
      const worker = store.createWorker<{ n: number }, string>(name);
      const added = await queue.add('task', { n });
      const job = await worker.getNextJob(TOKEN, { block: false });
      expect(job?.id).toBe(added.id);
      await job?.moveToCompleted('done', TOKEN, false);
    }),
  );
}

describe('PostgreSQL: one bounded pool for every queue', () => {
  let server: EmbeddedPostgresServer;
  let observer: pg.Client;

  beforeAll(async () => {
    server = await startEmbeddedPostgres({
      dataDir: await tempDir('pgbound'),
      log,
    });
    observer = new pg.Client({ connectionString: server.connectionString });
    await observer.connect();
  });

  afterAll(async () => {
    await observer?.end();
    await server?.stop();
  });

  /** Server-side connections to the database, not counting the observer's own. */
  const connections = async () => {
    const res = await observer.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    return Number(res.rows[0]?.n);
  };

  it(`keeps ${QUEUES} queues and workers within the pool, and still answers`, async () => {
    const store = await openQueueStore({
      url: server.connectionString,
      dataDir: await tempDir('pgbound-unused'),
      namespace: randomName('bound'),
      poolSize: POOL_SIZE,
      log,
    });
    try {
      await openManyQueues(store);
      // The pool, plus one LISTEN connection should anything block (nothing does).
      expect(await connections()).toBeLessThanOrEqual(POOL_SIZE + 1);
      expect(await store.ping()).toBe(true);
      await store.kv.set('still', { ok: true }, 60_000);
      expect(await store.kv.get('still')).toEqual({ ok: true });
      expect(await store.listQueues('model_')).toHaveLength(QUEUES);
      const limiter = store.limiterBackend();
      expect(limiter.kind).toBe('postgres');
      if (limiter.kind === 'postgres') {
        expect((await limiter.pool.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
      }
    } finally {
      await store.close();
    }
    // The server notices the closed sockets a moment later.
    await waitFor(async () => (await connections()) === 0, { what: 'every connection closed' });
  });
});

describe('Redis: one connection for every queue', () => {
  let redis: RedisServer;
  let observer: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    observer = new Redis(redis.url);
  });

  afterAll(async () => {
    observer?.disconnect();
    await redis?.stop();
  });

  /** Client connections, not counting the observer's own. */
  const connections = async () => {
    const list = (await observer.client('LIST')) as string;
    return list.trim().split('\n').length - 1;
  };

  it(`serves ${QUEUES} queues and workers over the store's one client`, async () => {
    const store = await openQueueStore({
      url: redis.url,
      dataDir: await tempDir('redisbound'),
      namespace: randomName('bound'),
      log,
    });
    try {
      await openManyQueues(store);
      expect(await connections()).toBe(1);
      expect(await store.ping()).toBe(true);
      const limiter = store.limiterBackend();
      expect(limiter.kind).toBe('redis');
      if (limiter.kind === 'redis') expect(await limiter.client.ping()).toBe('PONG');
    } finally {
      await store.close();
    }
    await waitFor(async () => (await connections()) === 0, { what: 'the connection closed' });
  });
});
