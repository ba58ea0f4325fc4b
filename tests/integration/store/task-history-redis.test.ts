/** The task history contract on a real Redis, each case under its own key prefix. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { openQueueStore, type QueueStore } from '../../../master/src/store/index.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { describeTaskHistoryContract } from './task-history.contract.ts';

const log = pino({ level: 'silent' });
let redis: RedisServer;
let dataDir: string;
const stores: QueueStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'flota-history-redis-'));
});

afterAll(async () => {
  for (const store of stores) await store.close();
  await redis?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describeTaskHistoryContract('redis', async () => {
  const store = await openQueueStore({
    url: redis.url,
    dataDir,
    namespace: randomName('h'),
    log,
  });
  stores.push(store);
  return store.history;
});
