import {
  type BackendFactory,
  createRedisBackend,
  type RedisQueueBackend,
  withBackend,
} from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../../../common/logger.ts';
import { settlesWithin } from '../../../common/timeout.ts';
import { checkKvKey, encodeKvEntry } from './kv.ts';
import { createRedisAudit } from './redis-audit.ts';
import { createRedisHistory } from './redis-history.ts';
import type { StoreBinding } from './tracked-store.ts';
import type { StoreKv, StoreQueue, StoreWorker } from './types.ts';

const PING_TIMEOUT_MS = 1_000;
const RECONNECT_MAX_MS = 500;

export interface RedisBindingOptions {
  url: string;
  /** BullMQ key prefix. */
  prefix: string;
  log: Logger;
}

/**
 * BullMQ's own factory, minus the blocking connection it duplicates for each
 * worker: the master takes jobs by hand without blocking
 * (`getNextJob(token, { block: false })`), so a worker needs no connection of
 * its own. (A blocking fetch would fail at once rather than stall the shared
 * connection.)
 */
const nonBlockingBackend: BackendFactory<RedisQueueBackend> = (name, opts, factoryOpts) =>
  createRedisBackend(name, opts, { ...factoryOpts, withBlockingConnection: false });
const { Queue, Worker } = withBackend(nonBlockingBackend);

/**
 * BullMQ on Redis over ONE ioredis connection: every queue and worker, the kv
 * entries, ping and the rate limiter share it (BullMQ leaves a caller's client
 * open when a queue closes); `maxRetriesPerRequest: null` as BullMQ requires.
 */
export function createRedisBinding(options: RedisBindingOptions): StoreBinding {
  const { prefix, log } = options;
  const client = new Redis(options.url, {
    maxRetriesPerRequest: null,
    // Back within half a second of Redis (ioredis' default waits up to 2 s between tries).
    retryStrategy: (times) => Math.min(times * 50, RECONNECT_MAX_MS),
  });
  let wasReady = false;
  client.on('ready', () => {
    if (!wasReady) log.info('connected to Redis');
    wasReady = true;
  });
  client.on('error', (err) => {
    // ioredis reports every failed reconnect; say it loudly once per outage.
    if (wasReady) log.warn({ err }, 'lost the Redis connection; reconnecting');
    else log.debug({ err }, 'Redis not reachable yet');
    wasReady = false;
  });

  const ping = async () => {
    if (client.status !== 'ready') return false;
    let answered = false;
    const settled = await settlesWithin(
      (async () => {
        answered = (await client.ping()) === 'PONG';
      })(),
      PING_TIMEOUT_MS,
    );
    return settled && answered;
  };

  // Commands would wait in ioredis' offline queue while Redis is away; kv callers want an answer.
  const connected = () => {
    if (client.status !== 'ready') throw new Error('the Redis store is not connected');
  };
  /** Entries live at `${prefix}:kv:${key}`; Redis expires them itself (PX). */
  const kv: StoreKv = {
    async get(key) {
      checkKvKey(key);
      connected();
      const raw = await client.get(`${prefix}:kv:${key}`);
      return raw === null ? undefined : (JSON.parse(raw) as unknown);
    },
    async set(key, value, ttlMs) {
      const json = encodeKvEntry(key, value, ttlMs);
      connected();
      await client.set(`${prefix}:kv:${key}`, json, 'PX', ttlMs);
    },
  };

  /** Queues with BullMQ keys under the prefix (their `meta` hash exists once a job was added). */
  const listQueues = async (namePrefix: string) => {
    const names = new Set<string>();
    const head = `${prefix}:`;
    for await (const keys of client.scanStream({
      match: `${head}${namePrefix}*:meta`,
      count: 500,
    })) {
      for (const key of keys as string[]) names.add(key.slice(head.length, -':meta'.length));
    }
    return [...names];
  };

  return {
    kv,
    audit: createRedisAudit(client, prefix),
    history: createRedisHistory(client, prefix),
    limiter: { kind: 'redis', client },
    listQueues,
    newQueue: (name, opts) =>
      new Queue(name, { ...opts, connection: client, prefix }) as unknown as StoreQueue,
    newWorker: (name, opts) =>
      new Worker(name, null, { ...opts, connection: client, prefix }) as unknown as StoreWorker,
    ping,
    async closeConnections() {
      if (client.status === 'ready') {
        const quit = await settlesWithin(client.quit(), PING_TIMEOUT_MS);
        if (quit) return;
      }
      client.disconnect();
    },
  };
}
