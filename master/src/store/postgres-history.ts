/**
 * The task history on PostgreSQL: two tables in the store's schema, created
 * on first use like flota_kv. `flota_task_history` holds a row per task (its
 * summary and usage facts), with a btree index per filter ordered by
 * submission time and one on the finish time for usage; `flota_task_events`
 * the timelines. A flush is one statement: a multi-row upsert whose SET
 * applies history-records.ts' merge rules, and the events' insert with it.
 */
import { quoteSchemaName } from 'bullmq';
import type pg from 'pg';
import type { TaskPage, TaskSummary, UsageRow } from '../../../proto/src/schemas/console.ts';
import { timelineEventSchema } from '../../../proto/src/schemas/console.ts';
import {
  decodeCursor,
  encodeCursor,
  type HistoryQuery,
  type HistoryRecord,
  MAX_SCAN,
  matches,
  periodMsOf,
  summaryOf,
} from './history-records.ts';
import { createInSchema, timedQuery } from './postgres-ddl.ts';
import type { StoreHistory } from './types.ts';

export const HISTORY_TABLE = 'flota_task_history';
export const EVENTS_TABLE = 'flota_task_events';

/** Columns and the record fields they hold. */
const COLUMNS = {
  id: 'id',
  tenant: 'tenant',
  model: 'model',
  prompt: 'prompt',
  submitted_at: 'submittedAt',
  state: 'state',
  state_at: 'stateAt',
  priority: 'priority',
  priority_at: 'priorityAt',
  attempts: 'attempts',
  worker_id: 'workerId',
  finished_at: 'finishedAt',
  total_ms: 'totalMs',
  ttft_ms: 'ttftMs',
  input_tokens: 'inputTokens',
  output_tokens: 'outputTokens',
  compute_ms: 'computeMs',
  cached: 'cached',
  error: 'error',
} as const satisfies Record<string, keyof HistoryRecord>;
type Column = keyof typeof COLUMNS;

const FINAL = `('completed','failed','cancelled')`;

export function createPostgresHistory(pool: pg.Pool, schema: string): StoreHistory {
  const quoted = quoteSchemaName(schema);
  const table = `${quoted}.${HISTORY_TABLE}`;
  const events = `${quoted}.${EVENTS_TABLE}`;
  const query = timedQuery(pool);
  let ready: Promise<void> | undefined;
  const ensureTables = () => {
    ready ??= createInSchema(pool, schema, [
      `CREATE TABLE IF NOT EXISTS ${table} (
         id text COLLATE "C" PRIMARY KEY, tenant text COLLATE "C", model text COLLATE "C",
         prompt text, submitted_at bigint, state text, state_at bigint, priority integer,
         priority_at bigint, attempts integer, worker_id text COLLATE "C", finished_at bigint,
         total_ms double precision, ttft_ms double precision, input_tokens bigint,
         output_tokens bigint, compute_ms double precision, cached boolean, error text)`,
      `CREATE INDEX IF NOT EXISTS flota_task_history_submitted ON ${table} (submitted_at DESC, id DESC)`,
      ...['tenant', 'model', 'worker_id', 'state'].map(
        (column) =>
          `CREATE INDEX IF NOT EXISTS flota_task_history_${column} ON ${table} (${column}, submitted_at DESC, id DESC)`,
      ),
      `CREATE INDEX IF NOT EXISTS flota_task_history_finished ON ${table} (finished_at) WHERE finished_at IS NOT NULL`,
      `CREATE TABLE IF NOT EXISTS ${events} (
         seq bigserial PRIMARY KEY, task_id text COLLATE "C" NOT NULL, at bigint NOT NULL,
         kind text NOT NULL, attempt integer, worker_id text, detail text)`,
      `CREATE INDEX IF NOT EXISTS flota_task_events_task ON ${events} (task_id, at)`,
      `CREATE INDEX IF NOT EXISTS flota_task_events_at ON ${events} (at)`,
    ]).catch((err: unknown) => {
      ready = undefined; // try again on the next call
      throw err;
    });
    return ready;
  };

  const columns = Object.keys(COLUMNS) as Column[];
  const set = (column: Column, expression: string) => `${column} = ${expression}`;
  // EXCLUDED's state is newer: none stored, or not final and older (a final one always wins).
  const newer = `(EXCLUDED.state IS NOT NULL AND (h.state IS NULL OR (h.state NOT IN ${FINAL}
    AND (EXCLUDED.state IN ${FINAL} OR COALESCE(EXCLUDED.state_at, 0) >= COALESCE(h.state_at, 0)))))`;
  const finalUpdate = `(${newer} AND EXCLUDED.state IN ${FINAL})`;
  const moreAttempts = `(EXCLUDED.attempts IS NOT NULL AND EXCLUDED.attempts >= COALESCE(h.attempts, -1))`;
  const laterPriority = `(EXCLUDED.priority IS NOT NULL AND COALESCE(EXCLUDED.priority_at, 0) >= COALESCE(h.priority_at, 0))`;
  const assignments = [
    ...(['tenant', 'model', 'prompt', 'submitted_at'] as const).map((c) =>
      set(c, `COALESCE(h.${c}, EXCLUDED.${c})`),
    ),
    set('state', `CASE WHEN ${newer} THEN EXCLUDED.state ELSE h.state END`),
    set('state_at', `CASE WHEN ${newer} THEN EXCLUDED.state_at ELSE h.state_at END`),
    ...(
      [
        'finished_at',
        'total_ms',
        'ttft_ms',
        'input_tokens',
        'output_tokens',
        'compute_ms',
        'cached',
        'error',
      ] as const
    ).map((c) => set(c, `CASE WHEN ${finalUpdate} THEN EXCLUDED.${c} ELSE h.${c} END`)),
    set('attempts', `CASE WHEN ${moreAttempts} THEN EXCLUDED.attempts ELSE h.attempts END`),
    set(
      'worker_id',
      `CASE WHEN ${moreAttempts} THEN COALESCE(EXCLUDED.worker_id, h.worker_id) ELSE h.worker_id END`,
    ),
    set('priority', `CASE WHEN ${laterPriority} THEN EXCLUDED.priority ELSE h.priority END`),
    set(
      'priority_at',
      `CASE WHEN ${laterPriority} THEN EXCLUDED.priority_at ELSE h.priority_at END`,
    ),
  ];
  // The state columns are read before any is assigned (SET sees the old row), so order is free.
  const upsert = `WITH up AS (
      INSERT INTO ${table} AS h (${columns.join(', ')})
      SELECT ${columns.join(', ')} FROM json_populate_recordset(NULL::${table}, $1::json)
      ON CONFLICT (id) DO UPDATE SET ${assignments.join(', ')}
      RETURNING 1)
    INSERT INTO ${events} (task_id, at, kind, attempt, worker_id, detail)
      SELECT task_id, at, kind, attempt, worker_id, detail
        FROM json_to_recordset($2::json)
          AS e(task_id text, at bigint, kind text, attempt integer, worker_id text, detail text)`;

  const summaryColumns = columns.join(', ');

  return {
    async write(updates) {
      if (updates.length === 0) return;
      await ensureTables();
      const rows = updates.map((update) => {
        const row: Record<string, unknown> = {};
        for (const column of columns) row[column] = update[COLUMNS[column]] ?? null;
        return row;
      });
      const timeline = updates.flatMap((update) =>
        update.events.map((event) => ({
          task_id: update.id,
          at: event.at,
          kind: event.kind,
          attempt: event.attempt ?? null,
          worker_id: event.workerId ?? null,
          detail: event.detail ?? null,
        })),
      );
      await query(upsert, [JSON.stringify(rows), JSON.stringify(timeline)]);
    },

    async page(q: HistoryQuery): Promise<TaskPage> {
      await ensureTables();
      const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
      if (q.q !== undefined && cursor === undefined) {
        const res = await query<Row>(`SELECT ${summaryColumns} FROM ${table} WHERE id = $1`, [q.q]);
        const record = res.rows[0] && recordOf(res.rows[0]);
        if (record && matches(record, q)) return { tasks: [summaryOf(record) as TaskSummary] };
      }
      const values: unknown[] = [];
      const where = ['submitted_at IS NOT NULL'];
      const add = (sql: (n: string) => string, value: unknown) => {
        values.push(value);
        where.push(sql(`$${values.length}`));
      };
      if (q.state !== undefined) add((n) => `state = ${n}`, q.state);
      if (q.tenant !== undefined) add((n) => `tenant = ${n}`, q.tenant);
      if (q.model !== undefined) add((n) => `model = ${n}`, q.model);
      if (q.workerId !== undefined) add((n) => `worker_id = ${n}`, q.workerId);
      if (q.from !== undefined) add((n) => `submitted_at >= ${n}`, q.from);
      if (q.to !== undefined) add((n) => `submitted_at <= ${n}`, q.to);
      if (cursor) {
        values.push(cursor.at, cursor.id);
        where.push(`(submitted_at, id) < ($${values.length - 1}, $${values.length})`);
      }
      const order = 'ORDER BY submitted_at DESC, id DESC';
      if (q.q === undefined) {
        const res = await query<Row>(
          `SELECT ${summaryColumns} FROM ${table} WHERE ${where.join(' AND ')} ${order} LIMIT ${q.limit + 1}`,
          values,
        );
        const tasks = res.rows.slice(0, q.limit).map((row) => summaryOf(recordOf(row)));
        const last = tasks.at(-1);
        return res.rows.length > q.limit && last
          ? {
              tasks: tasks as TaskSummary[],
              nextCursor: encodeCursor({ at: last.submittedAt, id: last.id }),
            }
          : { tasks: tasks as TaskSummary[] };
      }
      // A bounded search: read at most MAX_SCAN rows' ids, then fetch the hits.
      values.push(q.q);
      const scan = await query<{ id: string; submitted_at: string; hit: boolean }>(
        `SELECT id, submitted_at, strpos(lower(COALESCE(prompt, '')), lower($${values.length})) > 0 AS hit
           FROM ${table} WHERE ${where.join(' AND ')} ${order} LIMIT ${MAX_SCAN}`,
        values,
      );
      const hits: string[] = [];
      let nextCursor: string | undefined;
      for (const row of scan.rows) {
        if (!row.hit) continue;
        if (hits.length === q.limit) {
          const last = scan.rows.find((r) => r.id === hits.at(-1)) as (typeof scan.rows)[number];
          nextCursor = encodeCursor({ at: Number(last.submitted_at), id: last.id });
          break;
        }
        hits.push(row.id);
      }
      const end = scan.rows.at(-1);
      if (nextCursor === undefined && scan.rows.length === MAX_SCAN && end) {
        nextCursor = encodeCursor({ at: Number(end.submitted_at), id: end.id });
      }
      const found = await query<Row>(
        `SELECT ${summaryColumns} FROM ${table} WHERE id = ANY($1::text[]) ${order}`,
        [hits],
      );
      const tasks = found.rows.map((row) => summaryOf(recordOf(row)) as TaskSummary);
      return nextCursor === undefined ? { tasks } : { tasks, nextCursor };
    },

    async timeline(taskId) {
      await ensureTables();
      const [summary, timeline] = await Promise.all([
        query<Row>(`SELECT ${summaryColumns} FROM ${table} WHERE id = $1`, [taskId]),
        query<{
          at: string;
          kind: string;
          attempt: number | null;
          worker_id: string | null;
          detail: string | null;
        }>(
          `SELECT at, kind, attempt, worker_id, detail FROM ${events} WHERE task_id = $1 ORDER BY at, seq`,
          [taskId],
        ),
      ]);
      const task = summary.rows[0] && summaryOf(recordOf(summary.rows[0]));
      if (!task) return undefined;
      const parsed = timeline.rows.flatMap((row) => {
        const event = timelineEventSchema.safeParse({
          at: Number(row.at),
          kind: row.kind,
          ...(row.attempt !== null && { attempt: row.attempt }),
          ...(row.worker_id !== null && { workerId: row.worker_id }),
          ...(row.detail !== null && { detail: row.detail }),
        });
        return event.success ? [event.data] : [];
      });
      return { task, events: parsed };
    },

    async usage(selection) {
      await ensureTables();
      const periodMs = periodMsOf(selection.groupBy);
      const groups: Array<[string, keyof UsageRow]> = [];
      if (selection.groupBy.includes('tenant')) groups.push(['tenant', 'tenant']);
      if (selection.groupBy.includes('model')) groups.push(['model', 'model']);
      if (selection.groupBy.includes('worker')) groups.push(['worker_id', 'workerId']);
      if (periodMs !== undefined) {
        groups.push([`(finished_at / ${periodMs}) * ${periodMs}`, 'period']);
      }
      const values: unknown[] = [selection.from, selection.to];
      let where = `finished_at IS NOT NULL AND finished_at >= $1 AND finished_at <= $2 AND state IN ${FINAL}`;
      if (selection.tenant !== undefined) {
        values.push(selection.tenant);
        where += ` AND tenant = $3`;
      }
      const keys = groups.map(([expression], i) => `${expression} AS g${i}`);
      const groupBy =
        groups.length > 0 ? `GROUP BY ${groups.map((_g, i) => `g${i}`).join(', ')}` : '';
      const orderBy =
        groups.length > 0 ? `ORDER BY ${groups.map((_g, i) => `g${i} NULLS LAST`).join(', ')}` : '';
      const res = await query<Record<string, unknown>>(
        `SELECT ${[...keys, 'count(*) AS requests', `count(*) FILTER (WHERE state = 'completed') AS completed`, 'COALESCE(sum(input_tokens), 0) AS input_tokens', 'COALESCE(sum(output_tokens), 0) AS output_tokens', 'COALESCE(sum(compute_ms), 0) AS compute_ms', 'count(*) FILTER (WHERE cached) AS cache_hits'].join(', ')}
           FROM ${table} WHERE ${where} ${groupBy} HAVING count(*) > 0 ${orderBy}`,
        values,
      );
      return res.rows.map((row) => {
        const usage: UsageRow = {
          requests: Number(row.requests),
          completed: Number(row.completed),
          inputTokens: Number(row.input_tokens),
          outputTokens: Number(row.output_tokens),
          computeSeconds: Number(row.compute_ms) / 1000,
          cacheHits: Number(row.cache_hits),
        };
        groups.forEach(([, field], i) => {
          const value = row[`g${i}`];
          if (value === null || value === undefined) return;
          (usage as Record<string, unknown>)[field] = field === 'period' ? Number(value) : value;
        });
        return usage;
      });
    },

    async trim(before) {
      await ensureTables();
      const res = await query(
        `WITH gone AS (DELETE FROM ${table} WHERE COALESCE(submitted_at, state_at) < $1 RETURNING id),
              old AS (DELETE FROM ${events} WHERE at < $1 OR task_id IN (SELECT id FROM gone))
         SELECT count(*)::int AS n FROM gone`,
        [before],
      );
      return (res.rows[0] as { n: number } | undefined)?.n ?? 0;
    },
  };
}

/** A row as pg gives it: bigint columns arrive as strings. */
type Row = Record<Column, unknown>;

const NUMERIC = new Set<Column>([
  'submitted_at',
  'state_at',
  'priority_at',
  'finished_at',
  'input_tokens',
  'output_tokens',
]);

function recordOf(row: Row): HistoryRecord {
  const record: Record<string, unknown> = {};
  for (const column of Object.keys(COLUMNS) as Column[]) {
    const value = row[column];
    if (value === null || value === undefined) continue;
    record[COLUMNS[column]] = NUMERIC.has(column) ? Number(value) : value;
  }
  return record as unknown as HistoryRecord;
}
