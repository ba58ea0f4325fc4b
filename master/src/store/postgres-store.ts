import { createPostgresBackend, quoteSchemaName, withBackend } from 'bullmq';
import pg from 'pg';
import type { Clock } from '../../../common/clock.ts';
import type { Logger } from '../../../common/logger.ts';
import { createPostgresKv } from './postgres-kv.ts';
import type { StoreBinding } from './tracked-store.ts';
import type { StoreQueue, StoreWorker } from './types.ts';

const PING_TIMEOUT_MS = 1_000;

export interface PostgresBindingOptions {
  connectionString: string;
  /** PostgreSQL schema holding the BullMQ tables (created by its migrations). */
  schema: string;
  log: Logger;
  clock: Clock;
}

/**
 * BullMQ's PostgreSQL backend. Each queue and worker owns a pg pool of the
 * default size plus a LISTEN connection; BullMQ runs its schema migrations on
 * first connect (`migrate: true`). A separate one-connection pool answers ping(),
 * and the kv facet has its own small pool (postgres-kv.ts).
 */
export function createPostgresBinding(options: PostgresBindingOptions): StoreBinding {
  const { connectionString, schema, log, clock } = options;
  const { Queue, Worker } = withBackend(createPostgresBackend);
  const connection = { connectionString, schema, migrate: true };
  const pingPool = new pg.Pool({
    connectionString,
    max: 1,
    connectionTimeoutMillis: PING_TIMEOUT_MS,
    query_timeout: PING_TIMEOUT_MS,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
  });
  pingPool.on('error', (err) =>
    log.debug({ err: { message: err.message } }, 'PostgreSQL ping connection dropped'),
  );

  const kv = createPostgresKv({ connectionString, schema, clock, log });

  return {
    kv,
    newQueue: (name, opts) => new Queue(name, { ...opts, connection }) as unknown as StoreQueue,
    newWorker: (name, opts) =>
      new Worker(name, null, { ...opts, connection }) as unknown as StoreWorker,
    async listQueues(prefix) {
      const res = await pingPool.query<{ queue: string }>(
        `SELECT DISTINCT queue FROM ${quoteSchemaName(schema)}.job WHERE starts_with(queue, $1)`,
        [prefix],
      );
      return res.rows.map((row) => row.queue);
    },
    ping: () =>
      pingPool.query('SELECT 1').then(
        () => true,
        () => false,
      ),
    closeConnections: async () => {
      await Promise.all([pingPool.end(), kv.close()]);
    },
  };
}
