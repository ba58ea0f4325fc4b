/**
 * The task history contract on a real PostgreSQL (started embedded, reached
 * by URL as an external one would be), each case in its own schema.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import {
  type EmbeddedPostgresServer,
  startEmbeddedPostgres,
} from '../../../master/src/store/embedded-postgres.ts';
import { openQueueStore, type QueueStore } from '../../../master/src/store/index.ts';
import { randomName } from '../../helpers/random-name.ts';
import { describeTaskHistoryContract } from './task-history.contract.ts';

const log = pino({ level: 'silent' });
let server: EmbeddedPostgresServer;
let pgDataDir: string;
let storeDataDir: string;
const stores: QueueStore[] = [];

beforeAll(async () => {
  pgDataDir = await mkdtemp(join(tmpdir(), 'flota-history-pg-'));
  storeDataDir = await mkdtemp(join(tmpdir(), 'flota-history-pg-unused-'));
  server = await startEmbeddedPostgres({ dataDir: pgDataDir, log });
});

afterAll(async () => {
  for (const store of stores) await store.close();
  await server?.stop();
  await rm(pgDataDir, { recursive: true, force: true });
  await rm(storeDataDir, { recursive: true, force: true });
});

describeTaskHistoryContract('postgres', async () => {
  const store = await openQueueStore({
    url: server.connectionString,
    dataDir: storeDataDir,
    namespace: randomName('h'),
    log,
  });
  stores.push(store);
  return store.history;
});
