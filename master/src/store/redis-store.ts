import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Clock } from '../../../common/clock.ts';
import type { Logger } from '../../../common/logger.ts';
import type { StoreBinding } from './tracked-store.ts';
import { settleWithin } from './tracked-store.ts';
import type { StoreQueue, StoreWorker } from './types.ts';

const PING_TIMEOUT_MS = 1_000;

export interface RedisBindingOptions {
  url: string;
  /** BullMQ key prefix. */
  prefix: string;
  log: Logger;
  clock: Clock;
}

/**
 * BullMQ on Redis. One shared ioredis connection serves every queue and the
 * non-blocking side of every worker (BullMQ duplicates it for each worker's
 * blocking connection); `maxRetriesPerRequest: null` as BullMQ workers require.
 */
export function createRedisBinding(options: RedisBindingOptions): StoreBinding {
  const { prefix, log, clock } = options;
  const client = new Redis(options.url, { maxRetriesPerRequest: null });
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
    const settled = await settleWithin(
      async () => {
        answered = (await client.ping()) === 'PONG';
      },
      PING_TIMEOUT_MS,
      clock,
    );
    return settled && answered;
  };

  return {
    newQueue: (name, opts) =>
      new Queue(name, { ...opts, connection: client, prefix }) as unknown as StoreQueue,
    newWorker: (name, opts) =>
      new Worker(name, null, { ...opts, connection: client, prefix }) as unknown as StoreWorker,
    ping,
    async closeConnections() {
      if (client.status === 'ready') {
        const quit = await settleWithin(() => client.quit(), PING_TIMEOUT_MS, clock);
        if (quit) return;
      }
      client.disconnect();
    },
  };
}
