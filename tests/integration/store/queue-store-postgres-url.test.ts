import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { systemClock } from '../../../common/clock.ts';
import {
  type EmbeddedPostgresServer,
  startEmbeddedPostgres,
} from '../../../master/src/store/embedded-postgres.ts';
import { openQueueStore } from '../../../master/src/store/index.ts';
import { randomName } from '../../helpers/random-name.ts';
import { describeQueueStoreContract } from './queue-store.contract.ts';

const log = pino({ level: 'silent' });
let server: EmbeddedPostgresServer;
let pgDataDir: string;
let storeDataDir: string;
const namespace = randomName('flota');

beforeAll(async () => {
  pgDataDir = await mkdtemp(join(tmpdir(), 'flota-store-pgurl-'));
  storeDataDir = await mkdtemp(join(tmpdir(), 'flota-store-pgurl-unused-'));
  server = await startEmbeddedPostgres({ dataDir: pgDataDir, log, clock: systemClock });
});

afterAll(async () => {
  await server?.stop();
  await rm(pgDataDir, { recursive: true, force: true });
  await rm(storeDataDir, { recursive: true, force: true });
});

describeQueueStoreContract(
  'postgres:// URL',
  async () => {
    const url = server.connectionString.replace(/^postgres:/, 'postgresql:');
    const store = await openQueueStore({ url, dataDir: storeDataDir, namespace, log });
    expect(store.kind).toBe('postgres');
    return { store, cleanup: () => store.close() };
  },
  { stopServer: () => server.stop() },
);
