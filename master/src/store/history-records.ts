/**
 * The task history's records as both stores keep them: one summary per task,
 * merged from the updates every master writes, and the rules of that merge
 * (the same in the recorder's buffer, the Redis script and the PostgreSQL
 * upsert). Also the page cursor and the usage sums the Redis store adds up
 * itself.
 */
import { ValidationError } from '../../../common/errors.ts';
import type {
  TaskListQuery,
  TaskSummary,
  TimelineEvent,
  UsageGroup,
  UsageRow,
} from '../../../proto/src/schemas/console.ts';
import type { TaskState } from '../../../proto/src/schemas/task.ts';

/** Where a task stands, and the facts its summary and its usage need. */
export interface HistoryRecord {
  id: string;
  tenant?: string;
  model?: string;
  /** The prompt's first PROMPT_PREVIEW_CHARS characters. */
  prompt?: string;
  submittedAt?: number;
  state?: TaskState;
  /** When `state` was reached: an older state never replaces a newer one. */
  stateAt?: number;
  priority?: number;
  priorityAt?: number;
  attempts?: number;
  workerId?: string;
  finishedAt?: number;
  totalMs?: number;
  ttftMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  /** Milliseconds the worker spent on the answer. */
  computeMs?: number;
  cached?: boolean;
  error?: string;
}

/** What a master writes for one task at a flush: what it learnt, and the timeline's new events. */
export interface HistoryUpdate extends HistoryRecord {
  events: TimelineEvent[];
}

/** `GET /api/tasks`' filters as the store takes them (the caller's scope already applied). */
export type HistoryQuery = Omit<TaskListQuery, 'format'>;

/** `GET /api/usage` as the store takes it: finished in [from, to]. */
export interface UsageSelection {
  from: number;
  to: number;
  groupBy: UsageGroup[];
  tenant?: string;
}

/**
 * Records a page reads at most when it must look at each (a prompt search;
 * on Redis also several filters at once); its nextCursor goes on from there.
 */
export const MAX_SCAN = 5_000;

/** The fields a task's end sets, all at once. */
const FINAL_FIELDS = [
  'finishedAt',
  'totalMs',
  'ttftMs',
  'inputTokens',
  'outputTokens',
  'computeMs',
  'cached',
  'error',
] as const;

/** Set once: the first writer that knows them wins. */
const FIXED_FIELDS = ['tenant', 'model', 'prompt', 'submittedAt'] as const;

export const isFinal = (state: TaskState | undefined): boolean =>
  state === 'completed' || state === 'failed' || state === 'cancelled';

/**
 * Merges `update` into `into` (changed in place): fixed facts fill gaps; a
 * final state is never left; among running states the later wins (ties to
 * the update); the attempt count only grows and brings its worker; a
 * priority only gives way to a later one.
 */
export function mergeRecord(into: HistoryRecord, update: HistoryRecord): HistoryRecord {
  for (const field of FIXED_FIELDS) {
    if (into[field] === undefined && update[field] !== undefined) {
      (into as unknown as Record<string, unknown>)[field] = update[field];
    }
  }
  if (update.state !== undefined && isNewerState(into, update)) {
    into.state = update.state;
    into.stateAt = update.stateAt;
    if (isFinal(update.state)) {
      for (const field of FINAL_FIELDS) {
        (into as unknown as Record<string, unknown>)[field] = update[field];
      }
    }
  }
  if (update.attempts !== undefined && update.attempts >= (into.attempts ?? -1)) {
    into.attempts = update.attempts;
    if (update.workerId !== undefined) into.workerId = update.workerId;
  }
  if (update.priority !== undefined && (update.priorityAt ?? 0) >= (into.priorityAt ?? 0)) {
    into.priority = update.priority;
    into.priorityAt = update.priorityAt;
  }
  return into;
}

function isNewerState(stored: HistoryRecord, update: HistoryRecord): boolean {
  if (stored.state === undefined) return true;
  if (isFinal(stored.state)) return false;
  if (isFinal(update.state)) return true;
  return (update.stateAt ?? 0) >= (stored.stateAt ?? 0);
}

/** Several updates of one task as one: records merged, events in the order they came. */
export function mergeUpdate(into: HistoryUpdate, update: HistoryUpdate): HistoryUpdate {
  mergeRecord(into, update);
  into.events.push(...update.events);
  return into;
}

/**
 * The summary a list shows; undefined while the submission is unknown (no
 * master that saw it has written it yet).
 */
export function summaryOf(record: HistoryRecord): TaskSummary | undefined {
  if (record.submittedAt === undefined) return undefined;
  const summary: TaskSummary = {
    id: record.id,
    state: record.state ?? 'queued',
    tenant: record.tenant ?? '',
    model: record.model ?? '',
    priority: record.priority ?? 0,
    attempts: record.attempts ?? 0,
    prompt: record.prompt ?? '',
    submittedAt: record.submittedAt,
  };
  const optional = {
    workerId: record.workerId,
    finishedAt: record.finishedAt,
    totalMs: record.totalMs,
    ttftMs: record.ttftMs,
    inputTokens: record.inputTokens,
    outputTokens: record.outputTokens,
    cached: record.cached,
    error: record.error,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined && value !== null) (summary as Record<string, unknown>)[key] = value;
  }
  return summary;
}

/** True when a record passes the query's filters (the store's index may have applied some already). */
export function matches(record: HistoryRecord, query: HistoryQuery): boolean {
  if (query.state !== undefined && record.state !== query.state) return false;
  if (query.tenant !== undefined && record.tenant !== query.tenant) return false;
  if (query.model !== undefined && record.model !== query.model) return false;
  if (query.workerId !== undefined && record.workerId !== query.workerId) return false;
  const at = record.submittedAt;
  if (at === undefined) return false;
  if (query.from !== undefined && at < query.from) return false;
  return query.to === undefined || at <= query.to;
}

/** True when the prompt preview holds `text`, case-insensitively. */
export const promptHas = (record: HistoryRecord, text: string): boolean =>
  (record.prompt ?? '').toLowerCase().includes(text.toLowerCase());

// ── Cursor ──────────────────────────────────────────────────────────────────

/** Where a page stopped: the last task's submission time and id (newest first, ties by id). */
export interface HistoryCursor {
  at: number;
  id: string;
}

export const encodeCursor = (cursor: HistoryCursor): string => `${cursor.at}:${cursor.id}`;

/** The cursor of a `nextCursor`; a ValidationError (400) for anything else. */
export function decodeCursor(text: string): HistoryCursor {
  const match = /^(\d{1,16}):(.+)$/.exec(text);
  if (!match) throw new ValidationError('cursor: not a cursor this API gave (use nextCursor)');
  return { at: Number(match[1]), id: match[2] as string };
}

/** True when (at, id) comes after the cursor in newest-first order. */
export const isAfter = (cursor: HistoryCursor, at: number, id: string): boolean =>
  at < cursor.at || (at === cursor.at && id < cursor.id);

// ── Usage ───────────────────────────────────────────────────────────────────

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The period a finished time falls in (hour wins when both are asked). */
export function periodMsOf(groupBy: readonly UsageGroup[]): number | undefined {
  if (groupBy.includes('hour')) return HOUR_MS;
  return groupBy.includes('day') ? DAY_MS : undefined;
}

/** Adds finished records up per group, ordered by the group's keys (periods ascending). */
export function sumUsage(records: Iterable<HistoryRecord>, groupBy: UsageGroup[]): UsageRow[] {
  const periodMs = periodMsOf(groupBy);
  const byTenant = groupBy.includes('tenant');
  const byModel = groupBy.includes('model');
  const byWorker = groupBy.includes('worker');
  // Per group: its row, and its milliseconds added up whole and divided once (as SQL's sum).
  const groups = new Map<string, { row: UsageRow; computeMs: number }>();
  for (const r of records) {
    const tenant = byTenant ? r.tenant : undefined;
    const model = byModel ? r.model : undefined;
    const workerId = byWorker ? r.workerId : undefined;
    const period =
      periodMs === undefined ? undefined : Math.floor((r.finishedAt ?? 0) / periodMs) * periodMs;
    const key = `${tenant ?? ''}\u001f${model ?? ''}\u001f${workerId ?? ''}\u001f${period ?? ''}`;
    let group = groups.get(key);
    if (!group) {
      const row: UsageRow = {
        requests: 0,
        completed: 0,
        inputTokens: 0,
        outputTokens: 0,
        computeSeconds: 0,
        cacheHits: 0,
      };
      if (tenant !== undefined) row.tenant = tenant;
      if (model !== undefined) row.model = model;
      if (workerId !== undefined) row.workerId = workerId;
      if (period !== undefined) row.period = period;
      group = { row, computeMs: 0 };
      groups.set(key, group);
    }
    const { row } = group;
    row.requests += 1;
    if (r.state === 'completed') row.completed += 1;
    row.inputTokens += r.inputTokens ?? 0;
    row.outputTokens += r.outputTokens ?? 0;
    group.computeMs += r.computeMs ?? 0;
    if (r.cached) row.cacheHits += 1;
  }
  const rows: UsageRow[] = [];
  for (const { row, computeMs } of groups.values()) {
    row.computeSeconds = computeMs / 1000;
    rows.push(row);
  }
  return rows.sort(compareRows);
}

const compareText = (a: string | undefined, b: string | undefined) =>
  a === b ? 0 : a === undefined ? 1 : b === undefined ? -1 : a < b ? -1 : 1;

/** Group keys in order: tenant, model, worker, period; absent keys last. */
export function compareRows(a: UsageRow, b: UsageRow): number {
  return (
    compareText(a.tenant, b.tenant) ||
    compareText(a.model, b.model) ||
    compareText(a.workerId, b.workerId) ||
    (a.period ?? 0) - (b.period ?? 0)
  );
}
