/**
 * The audit trail on PostgreSQL: one append-only table in the store's
 * schema, `flota_audit(id bigserial, at bigint, entry jsonb)`. A trigger
 * refuses every UPDATE and DELETE, so not even a bug here can rewrite the
 * trail; a record's id is its cursor. Created on first use, like flota_kv.
 */
import { quoteSchemaName } from 'bullmq';
import type pg from 'pg';
import {
  type AuditEntry,
  type AuditPage,
  type AuditQuery,
  auditEntrySchema,
} from '../../../proto/src/schemas/audit.ts';
import { createInSchema, timedQuery } from './postgres-ddl.ts';
import type { StoreAudit } from './types.ts';

export const AUDIT_TABLE = 'flota_audit';

export function createPostgresAudit(pool: pg.Pool, schema: string): StoreAudit {
  const quoted = quoteSchemaName(schema);
  const table = `${quoted}.${AUDIT_TABLE}`;
  const guard = `${quoted}.flota_audit_append_only`;
  const query = timedQuery(pool);
  let ready: Promise<void> | undefined;
  const ensureTable = () => {
    ready ??= createInSchema(pool, schema, [
      `CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, at bigint NOT NULL, entry jsonb NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS flota_audit_at ON ${table} (at)`,
      `CREATE OR REPLACE FUNCTION ${guard}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$`,
      // CREATE OR REPLACE TRIGGER needs PostgreSQL 14; this pair works from 11 on.
      `DROP TRIGGER IF EXISTS flota_audit_append_only ON ${table}`,
      `CREATE TRIGGER flota_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ${table}
         FOR EACH STATEMENT EXECUTE FUNCTION ${guard}()`,
    ]).catch((err: unknown) => {
      ready = undefined; // try again on the next call
      throw err;
    });
    return ready;
  };

  return {
    async append(entry) {
      await ensureTable();
      await query(`INSERT INTO ${table} (at, entry) VALUES ($1, $2::jsonb)`, [
        entry.at,
        JSON.stringify(entry),
      ]);
    },
    async page(q: AuditQuery): Promise<AuditPage> {
      await ensureTable();
      const res = await query<{ id: string; entry: unknown }>(
        `SELECT id, entry FROM ${table}
          WHERE ($1::bigint IS NULL OR id < $1) AND ($2::bigint IS NULL OR at >= $2)
            AND ($3::bigint IS NULL OR at <= $3) AND ($4::text IS NULL OR entry->>'action' = $4)
          ORDER BY id DESC LIMIT $5`,
        [q.cursor ?? null, q.since ?? null, q.until ?? null, q.action ?? null, q.limit + 1],
      );
      const rows = res.rows.slice(0, q.limit);
      const records = rows.flatMap((row) => {
        const entry = auditEntrySchema.safeParse(row.entry);
        return entry.success ? [{ id: String(row.id), ...(entry.data as AuditEntry) }] : [];
      });
      const last = rows.at(-1);
      return res.rows.length > q.limit && last
        ? { records, nextCursor: String(last.id) }
        : { records };
    },
  };
}
