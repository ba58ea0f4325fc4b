/**
 * The audit trail on Redis: one stream, `${prefix}:audit`, appended with
 * XADD and trimmed to about MAX_AUDIT_RECORDS (MAXLEN ~), read newest first
 * with XREVRANGE. A record's stream id is its cursor.
 */
import type { Redis } from 'ioredis';
import {
  type AuditEntry,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  auditEntrySchema,
} from '../../../proto/src/schemas/audit.ts';
import type { StoreAudit } from './types.ts';

/** About how many records the stream keeps (the oldest go first). */
export const MAX_AUDIT_RECORDS = 100_000;
/** Records read per round while a filter skips some; a page stops after SCAN_ROUNDS rounds. */
const SCAN_BATCH = 500;
const SCAN_ROUNDS = 20;

export function createRedisAudit(client: Redis, prefix: string): StoreAudit {
  const key = `${prefix}:audit`;
  const connected = () => {
    if (client.status !== 'ready') throw new Error('the Redis store is not connected');
  };
  return {
    async append(entry) {
      connected();
      const add = (id: string) =>
        client.xadd(key, 'MAXLEN', '~', String(MAX_AUDIT_RECORDS), id, 'e', JSON.stringify(entry));
      // The id starts with the record's own time, so since/until bound the range read. A record
      // older than the stream's last (another master's clock ahead) takes the next id instead.
      await add(`${entry.at}-*`).catch((err: unknown) => {
        if (!/equal or smaller/i.test(String(err))) throw err;
        return add('*');
      });
    },
    async page(query: AuditQuery): Promise<AuditPage> {
      connected();
      const records: AuditRecord[] = [];
      // Stream ids begin with the Unix ms they were added at: since/until bound the range itself.
      let end = query.cursor
        ? `(${query.cursor}`
        : query.until === undefined
          ? '+'
          : `${query.until}`;
      const start = query.since === undefined ? '-' : `${query.since}`;
      for (let round = 0; round < SCAN_ROUNDS; round += 1) {
        const want =
          query.action || query.since !== undefined ? SCAN_BATCH : query.limit - records.length;
        const rows = await client.xrevrange(key, end, start, 'COUNT', want);
        for (const [id, fields] of rows) {
          end = `(${id}`;
          const entry = decode(fields);
          if (!entry || !wanted(entry, query)) continue;
          records.push({ id, ...entry });
          if (records.length === query.limit) return { records, nextCursor: id };
        }
        if (rows.length < want) return { records };
      }
      // Many records skipped by the filter: the caller goes on from where this page stopped.
      return { records, nextCursor: end.slice(1) };
    },
  };
}

function wanted(entry: AuditEntry, query: AuditQuery): boolean {
  if (query.action && entry.action !== query.action) return false;
  if (query.since !== undefined && entry.at < query.since) return false;
  return query.until === undefined || entry.at <= query.until;
}

function decode(fields: string[]): AuditEntry | undefined {
  const raw = fields[fields.indexOf('e') + 1];
  if (raw === undefined) return undefined;
  try {
    const parsed = auditEntrySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
