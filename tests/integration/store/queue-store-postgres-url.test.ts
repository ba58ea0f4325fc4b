import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type EmbeddedPostgresServer,
  startEmbeddedPostgres,
} from '../../../master/src/store/embedded-postgres.ts';
import { openQueueStore } from '../../../master/src/store/index.ts';
import { AUDIT_TABLE, createPostgresAudit } from '../../../master/src/store/postgres-audit.ts';
import { createPostgresKv, KV_TABLE } from '../../../master/src/store/postgres-kv.ts';
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
  server = await startEmbeddedPostgres({ dataDir: pgDataDir, log });
});

afterAll(async () => {
  await server?.stop();
  await rm(pgDataDir, { recursive: true, force: true });
  await rm(storeDataDir, { recursive: true, force: true });
});

describe('PostgreSQL audit table', () => {
  it('refuses every UPDATE, DELETE and TRUNCATE: the trail is append-only', async () => {
    const schema = randomName('audit');
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 2 });
    const audit = createPostgresAudit(pool, schema);
    const table = `"${schema}".${AUDIT_TABLE}`;
    try {
      await audit.append({ at: 1, action: 'fleet.stop', result: 'ok', actor: 'ops' });
      await expect(pool.query(`UPDATE ${table} SET at = 2`)).rejects.toThrow(/append-only/);
      await expect(pool.query(`DELETE FROM ${table}`)).rejects.toThrow(/append-only/);
      await expect(pool.query(`TRUNCATE ${table}`)).rejects.toThrow(/append-only/);
      const page = await audit.page({ limit: 10 });
      expect(page.records).toMatchObject([{ at: 1, action: 'fleet.stop', actor: 'ops' }]);
    } finally {
      await pool.end();
    }
  });
});

describe('PostgreSQL kv table', () => {
  it('deletes expired rows when a read meets them and in the sweep', async () => {
    // Only Date is faked: the pool and the kv's sweep keep real timers.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const schema = randomName('kv');
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 2 });
    const kv = createPostgresKv({ pool, schema, log });
    const db = new pg.Client({ connectionString: server.connectionString });
    await db.connect();
    const keys = async () =>
      (
        await db.query<{ key: string }>(`SELECT key FROM "${schema}".${KV_TABLE} ORDER BY key`)
      ).rows.map((r) => r.key);
    try {
      await kv.set('a', { n: 1 }, 1_000);
      await kv.set('b', { n: 2 }, 1_000);
      await kv.set('c', { n: 3 }, 60_000);
      expect(await keys()).toEqual(['a', 'b', 'c']);
      vi.setSystemTime(1_001_000); // a and b expire exactly now
      expect(await kv.get('a')).toBeUndefined();
      expect(await keys()).toEqual(['b', 'c']);
      expect(await kv.sweep()).toBe(1);
      expect(await keys()).toEqual(['c']);
      expect(await kv.get('c')).toEqual({ n: 3 });
    } finally {
      vi.useRealTimers();
      await db.end();
      kv.close();
      await pool.end();
    }
  });
});

// Last: the contract's final case stops the server.
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
