/** flota's own tables in the store's PostgreSQL schema, next to BullMQ's: creating and querying them. */
import { MIGRATION_ADVISORY_LOCK_KEY, quoteSchemaName } from 'bullmq';
import type pg from 'pg';

/**
 * Runs `statements` in one transaction after creating the schema. BullMQ's
 * migrations create the same schema under this advisory lock; taking it too
 * keeps two `CREATE SCHEMA IF NOT EXISTS` from colliding.
 */
export async function createInSchema(
  pool: pg.Pool,
  schema: string,
  statements: readonly string[],
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
      MIGRATION_ADVISORY_LOCK_KEY,
      schema,
    ]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteSchemaName(schema)}`);
    for (const statement of statements) await client.query(statement);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** How long one query of flota's own tables may take: a caller gets an answer while the server is away. */
const QUERY_TIMEOUT_MS = 5_000;

/** A query on `pool` bounded by QUERY_TIMEOUT_MS. */
export function timedQuery(pool: pg.Pool) {
  return <R extends pg.QueryResultRow>(text: string, values: unknown[]) => {
    // pg honours a per-query query_timeout; its typings only know the pool-wide one.
    const config: pg.QueryConfig & { query_timeout: number } = {
      text,
      values,
      query_timeout: QUERY_TIMEOUT_MS,
    };
    return pool.query<R>(config);
  };
}
