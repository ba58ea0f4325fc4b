import {
  type BackendFactory,
  PostgresConnection,
  type PostgresConnectionOptions,
  PostgresQueueBackend,
  quoteSchemaName,
  withBackend,
} from 'bullmq';
import type pg from 'pg';
import type { Logger } from '../../../common/logger.ts';
import { settlesWithin } from '../../../common/timeout.ts';
import { createPostgresAudit } from './postgres-audit.ts';
import { createPostgresHistory } from './postgres-history.ts';
import { createPostgresKv } from './postgres-kv.ts';
import type { StoreBinding } from './tracked-store.ts';
import type { StoreQueue, StoreWorker } from './types.ts';

const PING_TIMEOUT_MS = 1_000;
/** Default size of the store's one pool. */
export const DEFAULT_POOL_SIZE = 10;
/** How long a query may wait for a free pooled connection before it fails. */
const ACQUIRE_TIMEOUT_MS = 10_000;

export interface PostgresBindingOptions {
  connectionString: string;
  /** PostgreSQL schema holding the BullMQ tables (created by its migrations). */
  schema: string;
  /** Most connections in the pool. Default DEFAULT_POOL_SIZE. */
  poolSize?: number;
  log: Logger;
}

/**
 * BullMQ's PostgreSQL backend over ONE connection: every queue and worker,
 * the kv table, ping and the rate limiter share one bounded pg pool (BullMQ's
 * own factory gives each queue and worker a pool and a LISTEN client, so a few
 * dozen model names exhausted the server's connections). A LISTEN connection
 * is opened only if something blocks waiting for a job, which the master never
 * does (it takes jobs by hand, without blocking).
 *
 * The shared PostgresConnection runs BullMQ's schema migrations once, in
 * ready(); its backends do not own it, so closing a queue or worker leaves the
 * pool to closeConnections().
 */
export function createPostgresBinding(options: PostgresBindingOptions): StoreBinding {
  const { connectionString, schema, log } = options;
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new RangeError(`poolSize must be a positive integer, got ${poolSize}`);
  }
  const connection = new PostgresConnection({
    connectionString,
    schema,
    migrate: true,
    max: poolSize,
    connectionTimeoutMillis: ACQUIRE_TIMEOUT_MS,
    idleTimeoutMillis: 10_000,
    keepAlive: true,
    allowExitOnIdle: true,
  });
  // Idle pooled connections that drop (a server restart) are replaced on the next query.
  connection.on('error', (err: Error) =>
    log.debug({ err: { message: err.message } }, 'PostgreSQL connection dropped'),
  );
  // BullMQ builds it with the same `pg` module this process imports.
  const pool = connection.pool as unknown as pg.Pool;

  const shared: BackendFactory<PostgresQueueBackend, PostgresConnectionOptions> = (name, opts) =>
    new PostgresQueueBackend(connection, name, opts, false);
  const { Queue, Worker } = withBackend(shared);
  // Required by BullMQ's option types; the factory above ignores it.
  const unused = { connection: connectionString };

  const kv = createPostgresKv({ pool, schema, log });

  const query = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => {
    // pg honours a per-query query_timeout; its typings only know the pool-wide one.
    const config: pg.QueryConfig & { query_timeout: number } = {
      text,
      values,
      query_timeout: PING_TIMEOUT_MS,
    };
    return pool.query<R>(config);
  };

  return {
    kv,
    audit: createPostgresAudit(pool, schema),
    history: createPostgresHistory(pool, schema),
    limiter: { kind: 'postgres', pool },
    // A failed first migration would stay memoized in BullMQ's connection: run it before any queue.
    ready: () => connection.waitUntilReady(),
    newQueue: (name, opts) => new Queue(name, { ...opts, ...unused }) as unknown as StoreQueue,
    newWorker: (name, opts) =>
      new Worker(name, null, { ...opts, ...unused }) as unknown as StoreWorker,
    async listQueues(prefix) {
      const res = await pool.query<{ queue: string }>(
        `SELECT DISTINCT queue FROM ${quoteSchemaName(schema)}.job WHERE starts_with(queue, $1)`,
        [prefix],
      );
      return res.rows.map((row) => row.queue);
    },
    async ping() {
      let answered = false;
      // Bounded twice: the query itself, and the wait for a pooled connection.
      const settled = await settlesWithin(
        (async () => {
          await query('SELECT 1');
          answered = true;
        })(),
        PING_TIMEOUT_MS,
      );
      return settled && answered;
    },
    closeConnections: async () => {
      kv.close();
      await connection.close();
    },
  };
}
