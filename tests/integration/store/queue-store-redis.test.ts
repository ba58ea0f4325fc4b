import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { openQueueStore } from '../../../master/src/store/index.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { describeQueueStoreContract } from './queue-store.contract.ts';

const log = pino({ level: 'silent' });
let redis: RedisServer;
let dataDir: string;
const namespace = randomName('flota');

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'flota-store-redis-'));
});

afterAll(async () => {
  await redis?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describeQueueStoreContract(
  'redis',
  async () => {
    const store = await openQueueStore({ url: redis.url, dataDir, namespace, log });
    return { store, cleanup: () => store.close() };
  },
  { stopServer: () => redis.stop() },
);
