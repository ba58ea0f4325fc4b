/**
 * The task history on Redis, under the store's prefix:
 *
 * - `${prefix}:history:tasks`: hash, task id → its summary (JSON);
 * - `${prefix}:history:fin`: sorted set of finished tasks by finish time, each
 *   member what usage sums of the task, as one delimited string (a usage
 *   report reads one range and nothing else), written once, when the task's
 *   record first turns final (a final state never changes);
 * - `${prefix}:history:usage`: hash, finished task id → its member in `fin`
 *   (for the trim);
 * - `${prefix}:history:tl:{id}`: list, the task's timeline events (JSON);
 * - `${prefix}:history:ix:all` and `…:ix:{state|tenant|model|worker}:{value}`:
 *   sorted sets of task ids scored by submission time, one per filter value
 *   (the trim finds them with SCAN: no bookkeeping on the hot path);
 *
 * A flush is one pipeline: a script per task merges its update into the
 * stored summary (history-records.ts' rules) and keeps the indexes right,
 * atomically, so masters sharing the store never undo each other.
 */
import type { Redis } from 'ioredis';
import type { TaskPage, TaskSummary, TimelineEvent } from '../../../proto/src/schemas/console.ts';
import { timelineEventSchema } from '../../../proto/src/schemas/console.ts';
import {
  decodeCursor,
  encodeCursor,
  type HistoryCursor,
  type HistoryQuery,
  type HistoryRecord,
  isAfter,
  MAX_SCAN,
  matches,
  promptHas,
  summaryOf,
  sumUsage,
} from './history-records.ts';
import type { StoreHistory } from './types.ts';

/** Ids read per round while filters or a search skip some. */
const SCAN_BATCH = 500;
/** Ids deleted per round of a trim, and summaries read per HMGET. */
const CHUNK = 1_000;

/**
 * Merges tasks' updates; ARGV: key prefix, then a JSON array of
 * `[update, [event (JSON), …]]`, at most MERGE_BATCH of them (one script
 * call for many tasks: the command's own cost, in the master and in Redis,
 * once per batch; a batch short enough not to hold Redis up for long).
 */
const MERGE_SCRIPT = `
local p = ARGV[1]
local function final(x) return x == 'completed' or x == 'failed' or x == 'cancelled' end
local function merge(u, events)
local id = u.id
local raw = redis.call('HGET', p .. ':tasks', id)
local s
if raw then s = cjson.decode(raw) else s = { id = id } end
local oldState, oldWorker, oldSub, oldTenant, oldModel = s.state, s.workerId, s.submittedAt, s.tenant, s.model
for _, f in ipairs({ 'tenant', 'model', 'prompt', 'submittedAt' }) do
  if s[f] == nil and u[f] ~= nil then s[f] = u[f] end
end
if u.state ~= nil then
  local newer
  if s.state == nil then newer = true
  elseif final(s.state) then newer = false
  elseif final(u.state) then newer = true
  else newer = (u.stateAt or 0) >= (s.stateAt or 0) end
  if newer then
    s.state = u.state
    s.stateAt = u.stateAt
    if final(u.state) then
      for _, f in ipairs({ 'finishedAt', 'totalMs', 'ttftMs', 'inputTokens', 'outputTokens',
                           'computeMs', 'cached', 'error' }) do
        s[f] = u[f]
      end
    end
  end
end
if u.attempts ~= nil and u.attempts >= (s.attempts or -1) then
  s.attempts = u.attempts
  if u.workerId ~= nil then s.workerId = u.workerId end
end
if u.priority ~= nil and (u.priorityAt or 0) >= (s.priorityAt or 0) then
  s.priority = u.priority
  s.priorityAt = u.priorityAt
end
redis.call('HSET', p .. ':tasks', id, cjson.encode(s))
local sub = s.submittedAt
if sub ~= nil then
  -- Only what changed is indexed: the indexes wait for the submission time, then follow each value.
  local fresh = oldSub == nil
  local function ix(name, old, new)
    if not fresh and old == new then return end
    if not fresh and old ~= nil then redis.call('ZREM', p .. ':ix:' .. name .. ':' .. old, id) end
    if new ~= nil then redis.call('ZADD', p .. ':ix:' .. name .. ':' .. new, sub, id) end
  end
  if fresh then redis.call('ZADD', p .. ':ix:all', sub, id) end
  ix('state', oldState, s.state)
  ix('tenant', oldTenant, s.tenant)
  ix('model', oldModel, s.model)
  ix('worker', oldWorker, s.workerId)
end
if final(s.state) and not final(oldState) and s.finishedAt ~= nil then
  local function f(x) if x == nil then return '' end return tostring(x) end
  local model = (string.gsub(f(s.model), '\\31', '?'))
  local member = table.concat({ f(s.finishedAt), s.state, f(s.inputTokens), f(s.outputTokens), f(s.computeMs),
    s.cached and '1' or '0', f(s.tenant), f(s.workerId), model, id }, '\\31')
  redis.call('ZADD', p .. ':fin', s.finishedAt, member)
  redis.call('HSET', p .. ':usage', id, member)
end
if #events > 0 then redis.call('RPUSH', p .. ':tl:' .. id, unpack(events)) end
end
for _, item in ipairs(cjson.decode(ARGV[2])) do merge(item[1], item[2]) end
return 1
`;

/** Tasks merged by one script call. */
const MERGE_BATCH = 100;

/** A pipeline with the merge script as a command (defineCommand adds it at run time). */
interface MergePipeline {
  flotaHistoryMerge(prefix: string, batch: string): unknown;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

export function createRedisHistory(client: Redis, storePrefix: string): StoreHistory {
  const p = `${storePrefix}:history`;
  const tasksKey = `${p}:tasks`;
  const usageKey = `${p}:usage`;
  const finKey = `${p}:fin`;
  if (!('flotaHistoryMerge' in client)) {
    client.defineCommand('flotaHistoryMerge', { numberOfKeys: 0, lua: MERGE_SCRIPT });
  }
  const connected = () => {
    if (client.status !== 'ready') throw new Error('the Redis store is not connected');
  };

  const records = async (ids: readonly string[]): Promise<HistoryRecord[]> => {
    if (ids.length === 0) return [];
    const pipeline = client.pipeline();
    for (let i = 0; i < ids.length; i += CHUNK)
      pipeline.hmget(tasksKey, ...ids.slice(i, i + CHUNK));
    const found: HistoryRecord[] = [];
    for (const [err, values] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      for (const raw of values as Array<string | null>) {
        const record = raw === null ? undefined : parseRecord(raw);
        if (record) found.push(record);
      }
    }
    return found;
  };

  /**
   * The smallest index of the query's filters; the other filters are checked
   * on the summaries. `exact`: the index alone answers the query.
   */
  const indexOf = async (q: HistoryQuery): Promise<{ key: string; exact: boolean }> => {
    const keys = [
      q.workerId !== undefined && `worker:${q.workerId}`,
      q.tenant !== undefined && `tenant:${q.tenant}`,
      q.model !== undefined && `model:${q.model}`,
      q.state !== undefined && `state:${q.state}`,
    ]
      .filter((f): f is string => typeof f === 'string')
      .map((f) => `${p}:ix:${f}`);
    const exact = keys.length <= 1 && q.q === undefined;
    if (keys.length <= 1) return { key: keys[0] ?? `${p}:ix:all`, exact };
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.zcard(key);
    const sizes = ((await pipeline.exec()) ?? []).map(([, n]) => Number(n));
    const smallest = sizes.indexOf(Math.min(...sizes));
    return { key: keys[smallest] as string, exact };
  };

  const page = async (q: HistoryQuery): Promise<TaskPage> => {
    connected();
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (q.q !== undefined && cursor === undefined) {
      const [byId] = await records([q.q]);
      if (byId && matches(byId, q)) return { tasks: [summaryOf(byId) as TaskSummary] };
    }
    const { key, exact } = await indexOf(q);
    const max = cursor ? String(Math.min(cursor.at, q.to ?? Number.POSITIVE_INFINITY)) : q.to;
    const min = q.from ?? '-inf';
    const tasks: TaskSummary[] = [];
    let offset = 0;
    let scanned = 0;
    let last: HistoryCursor | undefined;
    for (;;) {
      const want = exact ? q.limit + 1 - tasks.length : SCAN_BATCH;
      const rows = await client.zrevrangebyscore(
        key,
        max ?? '+inf',
        min,
        'WITHSCORES',
        'LIMIT',
        offset,
        want,
      );
      offset += rows.length / 2;
      const ids: string[] = [];
      for (let i = 0; i < rows.length; i += 2) {
        const id = rows[i] as string;
        const at = Number(rows[i + 1]);
        if (!cursor || isAfter(cursor, at, id)) ids.push(id);
      }
      const byId = new Map((await records(ids)).map((r) => [r.id, r]));
      for (const id of ids) {
        scanned += 1;
        const record = byId.get(id);
        if (!record || !matches(record, q) || (q.q !== undefined && !promptHas(record, q.q))) {
          continue;
        }
        const summary = summaryOf(record) as TaskSummary;
        if (tasks.length === q.limit) {
          return { tasks, nextCursor: encodeCursor(last as HistoryCursor) };
        }
        tasks.push(summary);
        last = { at: summary.submittedAt, id };
      }
      if (rows.length / 2 < want) return { tasks };
      if (scanned >= MAX_SCAN) {
        // A bounded scan (a search, or several filters): the next page goes on from the last task read.
        const at = Number(rows[rows.length - 1]);
        return { tasks, nextCursor: encodeCursor({ at, id: rows[rows.length - 2] as string }) };
      }
    }
  };

  return {
    async write(updates) {
      if (updates.length === 0) return;
      connected();
      const pipeline = client.pipeline() as unknown as MergePipeline;
      for (let i = 0; i < updates.length; i += MERGE_BATCH) {
        const batch = updates
          .slice(i, i + MERGE_BATCH)
          .map(({ events, ...record }) => [record, events.map(encodeEvent)]);
        pipeline.flotaHistoryMerge(p, JSON.stringify(batch));
      }
      for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
    },

    page,

    async timeline(taskId) {
      connected();
      const [raw, events] = await Promise.all([
        client.hget(tasksKey, taskId),
        client.lrange(`${p}:tl:${taskId}`, 0, -1),
      ]);
      const record = raw === null ? undefined : parseRecord(raw);
      const task = record && summaryOf(record);
      if (!task) return undefined;
      const parsed = events.flatMap((text) => {
        const event = parseEvent(text);
        return event ? [event] : [];
      });
      return { task, events: parsed.sort((a, b) => a.at - b.at) };
    },

    async usage(selection) {
      connected();
      const members = await client.zrangebyscore(finKey, selection.from, selection.to);
      const finished: HistoryRecord[] = [];
      for (const member of members) {
        const record = usageOf(member);
        if (selection.tenant === undefined || record.tenant === selection.tenant) {
          finished.push(record);
        }
      }
      return sumUsage(finished, selection.groupBy);
    },

    async trim(before) {
      connected();
      let removed = 0;
      const allKey = `${p}:ix:all`;
      for (;;) {
        const ids = await client.zrangebyscore(allKey, '-inf', `(${before}`, 'LIMIT', 0, CHUNK);
        if (ids.length === 0) break;
        const members = (await client.hmget(usageKey, ...ids)).filter(
          (m): m is string => m !== null,
        );
        const pipeline = client.pipeline();
        pipeline.hdel(tasksKey, ...ids);
        pipeline.hdel(usageKey, ...ids);
        if (members.length > 0) pipeline.zrem(finKey, ...members);
        pipeline.zrem(allKey, ...ids);
        pipeline.del(...ids.map((id) => `${p}:tl:${id}`));
        for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
        removed += ids.length;
      }
      const keys: string[] = [];
      for await (const batch of client.scanStream({ match: `${p}:ix:*`, count: 1_000 })) {
        keys.push(...(batch as string[]));
      }
      if (keys.length > 0) {
        const pipeline = client.pipeline();
        for (const key of keys) pipeline.zremrangebyscore(key, '-inf', `(${before}`);
        for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
      }
      return removed;
    },
  };
}

function parseRecord(raw: string): HistoryRecord | undefined {
  try {
    const value = JSON.parse(raw) as unknown;
    if (!value || typeof value !== 'object' || typeof (value as HistoryRecord).id !== 'string') {
      return undefined;
    }
    return value as HistoryRecord;
  } catch {
    return undefined;
  }
}

const encodeEvent = (event: TimelineEvent): string => JSON.stringify(event);

/** A `fin` member (finished, state, tokens in and out, compute ms, cached, tenant, worker, model, id) read back. */
function usageOf(member: string): HistoryRecord {
  const [finishedAt, state, input, output, computeMs, cached, tenant, workerId, model] =
    member.split('\x1f');
  const number = (text: string | undefined) => (text ? Number(text) : undefined);
  return {
    id: '',
    state: state as HistoryRecord['state'],
    inputTokens: number(input),
    outputTokens: number(output),
    computeMs: number(computeMs),
    cached: cached === '1',
    tenant: tenant || undefined,
    workerId: workerId || undefined,
    model: model || undefined,
    finishedAt: Number(finishedAt),
  };
}

function parseEvent(raw: string): TimelineEvent | undefined {
  try {
    const parsed = timelineEventSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
