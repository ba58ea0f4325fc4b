/**
 * StoreKv on PostgreSQL: one table in the store's schema,
 * `flota_kv(key text primary key, value jsonb, expires_at bigint)` (Unix ms).
 * The table is created on first use; expired rows are never returned, are
 * deleted when a read meets them, and by a sweep every KV_SWEEP_MS. Queries
 * run on the store's one pool (postgres-store.ts), each bounded in time
 * (timedQuery) so a caller gets an answer while the server is away.
 */
import { quoteSchemaName } from 'bullmq';
import type pg from 'pg';
import type { Logger } from '../../../common/logger.ts';
import { checkKvKey, encodeKvEntry } from './kv.ts';
import { createInSchema, timedQuery } from './postgres-ddl.ts';
import type { StoreKv } from './types.ts';

export const KV_TABLE = 'flota_kv';
/** How often expired rows are deleted in bulk. */
export const KV_SWEEP_MS = 60_000;

export interface PostgresKvOptions {
  /** The store's pool; the kv borrows it and never ends it. */
  pool: pg.Pool;
  schema: string;
  log: Logger;
}

export interface PostgresKv extends StoreKv {
  /** Deletes every expired row now; resolves with how many went. */
  sweep(): Promise<number>;
  /** Stops the sweep (the pool is the store's to end). */
  close(): void;
}

export function createPostgresKv(options: PostgresKvOptions): PostgresKv {
  const { pool, log, schema } = options;
  const table = `${quoteSchemaName(schema)}.${KV_TABLE}`;
  const query = timedQuery(pool);

  const createTable = () =>
    createInSchema(pool, schema, [
      `CREATE TABLE IF NOT EXISTS ${table} (key text PRIMARY KEY, value jsonb NOT NULL, expires_at bigint NOT NULL)`,
    ]);
  let ready: Promise<void> | undefined;
  const ensureTable = () => {
    ready ??= createTable().catch((err: unknown) => {
      ready = undefined; // try again on the next call
      throw err;
    });
    return ready;
  };

  const sweep = async () => {
    if (!ready) return 0;
    await ensureTable();
    const res = await query(`DELETE FROM ${table} WHERE expires_at <= $1`, [Date.now()]);
    return res.rowCount ?? 0;
  };
  const timer = setInterval(() => {
    sweep().then(
      (n) => n > 0 && log.debug({ deleted: n }, 'expired kv rows deleted'),
      (err: unknown) => log.debug({ err }, 'kv sweep failed'),
    );
  }, KV_SWEEP_MS);
  timer.unref?.();

  return {
    async get(key) {
      checkKvKey(key);
      await ensureTable();
      const now = Date.now();
      const res = await query<{ value: unknown; expires_at: string }>(
        `SELECT value, expires_at FROM ${table} WHERE key = $1`,
        [key],
      );
      const row = res.rows[0];
      if (!row) return undefined;
      if (Number(row.expires_at) > now) return row.value;
      await query(`DELETE FROM ${table} WHERE key = $1 AND expires_at <= $2`, [key, now]).catch(
        () => undefined,
      );
      return undefined;
    },
    async set(key, value, ttlMs) {
      const json = encodeKvEntry(key, value, ttlMs);
      await ensureTable();
      await query(
        `INSERT INTO ${table} (key, value, expires_at) VALUES ($1, $2::jsonb, $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
        [key, json, Date.now() + ttlMs],
      );
    },
    sweep,
    close() {
      clearInterval(timer);
    },
  };
}
