/**
 * The cases every store's task history must pass (the Redis and the
 * PostgreSQL one): records, filters, cursor paging, search, the trim, usage
 * groups and the merge rules several masters rely on. Each backend's test
 * file calls describeTaskHistoryContract with a way to open a fresh history.
 */
import { describe, expect, it } from 'vitest';
import {
  type HistoryQuery,
  type HistoryUpdate,
  MAX_SCAN,
} from '../../../master/src/store/history-records.ts';
import type { StoreHistory } from '../../../master/src/store/types.ts';
import type { TaskSummary } from '../../../proto/src/schemas/console.ts';

const HOUR = 3_600_000;
/** 2026-01-01T00:00:00Z: whole hours and days from here. */
const T0 = Date.UTC(2026, 0, 1);

/** A task as its submitting master writes it, ended the way its finishing master writes it. */
function task(
  n: number,
  over: {
    tenant?: string;
    model?: string;
    worker?: string;
    state?: 'completed' | 'failed' | 'cancelled' | 'queued' | 'running';
    at?: number;
    prompt?: string;
    tokens?: [number, number];
    computeMs?: number;
    cached?: boolean;
  } = {},
): HistoryUpdate {
  const at = over.at ?? T0 + n * 1_000;
  const state = over.state ?? 'completed';
  const final = state === 'completed' || state === 'failed' || state === 'cancelled';
  const update: HistoryUpdate = {
    id: `any.echo.t${String(n).padStart(5, '0')}`,
    tenant: over.tenant ?? 'acme',
    model: over.model ?? 'echo',
    prompt: over.prompt ?? `Prompt number ${n}`,
    submittedAt: at,
    state,
    stateAt: at + 10,
    priority: 0,
    priorityAt: at,
    attempts: state === 'queued' ? 0 : 1,
    events: [{ at, kind: 'queued' }],
  };
  if (state !== 'queued') update.workerId = over.worker ?? 'w1';
  if (final) {
    Object.assign(update, {
      finishedAt: at + 10,
      totalMs: 10,
      inputTokens: over.tokens?.[0] ?? 3,
      outputTokens: over.tokens?.[1] ?? 5,
      computeMs: over.computeMs ?? 8,
      cached: over.cached ?? false,
      ...(state !== 'completed' && { error: `${state} on purpose` }),
    });
    update.events.push({ at: at + 10, kind: state, attempt: 1, workerId: update.workerId });
  }
  return update;
}

const query = (q: Partial<HistoryQuery> = {}): HistoryQuery => ({ limit: 50, ...q });
const ids = (tasks: TaskSummary[]) => tasks.map((t) => t.id);

/** Every page of a query, following nextCursor. */
async function allPages(history: StoreHistory, q: HistoryQuery): Promise<TaskSummary[]> {
  const found: TaskSummary[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 100; pages += 1) {
    const page = await history.page({ ...q, ...(cursor && { cursor }) });
    found.push(...page.tasks);
    cursor = page.nextCursor;
    if (!cursor) return found;
  }
  throw new Error('more than 100 pages');
}

export function describeTaskHistoryContract(
  label: string,
  open: () => Promise<StoreHistory>,
): void {
  describe(`task history contract: ${label}`, () => {
    it('keeps a summary per task, newest first, and its timeline in order', async () => {
      const history = await open();
      await history.write([task(1), task(2, { state: 'failed' }), task(3, { state: 'running' })]);
      const page = await history.page(query());
      expect(ids(page.tasks)).toEqual(['any.echo.t00003', 'any.echo.t00002', 'any.echo.t00001']);
      expect(page.nextCursor).toBeUndefined();
      expect(page.tasks[1]).toEqual({
        id: 'any.echo.t00002',
        state: 'failed',
        tenant: 'acme',
        model: 'echo',
        priority: 0,
        attempts: 1,
        workerId: 'w1',
        prompt: 'Prompt number 2',
        submittedAt: T0 + 2_000,
        finishedAt: T0 + 2_010,
        totalMs: 10,
        inputTokens: 3,
        outputTokens: 5,
        cached: false,
        error: 'failed on purpose',
      });
      const timeline = await history.timeline('any.echo.t00002');
      expect(timeline?.task.state).toBe('failed');
      expect(timeline?.events).toEqual([
        { at: T0 + 2_000, kind: 'queued' },
        { at: T0 + 2_010, kind: 'failed', attempt: 1, workerId: 'w1' },
      ]);
      expect(await history.timeline('any.echo.nope')).toBeUndefined();
    });

    it('filters by state, tenant, model, worker and submission time', async () => {
      const history = await open();
      await history.write([
        task(1, { tenant: 'acme', model: 'echo', worker: 'w1' }),
        task(2, { tenant: 'beta', model: 'echo', worker: 'w2', state: 'failed' }),
        task(3, { tenant: 'acme', model: 'llama', worker: 'w2' }),
        task(4, { tenant: 'beta', model: 'llama', state: 'queued' }),
        task(5, { tenant: 'acme', model: 'echo', worker: 'w1', state: 'cancelled' }),
      ]);
      const of = async (q: Partial<HistoryQuery>) =>
        ids((await history.page(query(q))).tasks).map((id) => Number(id.slice(-5)));
      expect(await of({ state: 'completed' })).toEqual([3, 1]);
      expect(await of({ state: 'queued' })).toEqual([4]);
      expect(await of({ tenant: 'beta' })).toEqual([4, 2]);
      expect(await of({ model: 'llama' })).toEqual([4, 3]);
      expect(await of({ workerId: 'w2' })).toEqual([3, 2]);
      expect(await of({ from: T0 + 2_000, to: T0 + 4_000 })).toEqual([4, 3, 2]);
      expect(await of({ tenant: 'acme', model: 'echo' })).toEqual([5, 1]);
      expect(await of({ tenant: 'acme', state: 'cancelled', workerId: 'w1' })).toEqual([5]);
      expect(await of({ tenant: 'nobody' })).toEqual([]);
    });

    it('pages with a cursor: every task once, ties in submission time included', async () => {
      const history = await open();
      const updates = Array.from({ length: 45 }, (_, n) =>
        // Three tasks per millisecond: the cursor must tell them apart by id.
        task(n, { at: T0 + Math.floor(n / 3), tenant: n % 2 ? 'odd' : 'even' }),
      );
      await history.write(updates);
      const first = await history.page(query({ limit: 10 }));
      expect(first.tasks).toHaveLength(10);
      expect(first.nextCursor).toBeDefined();
      const all = await allPages(history, query({ limit: 10 }));
      expect(all).toHaveLength(45);
      expect(new Set(ids(all)).size).toBe(45);
      const order = all.map((t) => [t.submittedAt, t.id] as const);
      const sorted = [...order].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? 1 : -1));
      expect(order).toEqual(sorted);
      const odd = await allPages(history, query({ limit: 4, tenant: 'odd' }));
      expect(odd).toHaveLength(22);
      expect(odd.every((t) => t.tenant === 'odd')).toBe(true);
      const exact = await history.page(query({ limit: 45 }));
      expect(exact.tasks).toHaveLength(45);
      expect(exact.nextCursor).toBeUndefined();
    });

    it('searches a whole task id, or prompt text case-insensitively, and stops a long scan', async () => {
      const history = await open();
      await history.write([
        task(1, { prompt: 'Write a HAIKU about the sea' }),
        task(2, { prompt: 'Summarise this report' }),
        task(3, { prompt: 'another haiku, please', tenant: 'beta' }),
      ]);
      expect(ids((await history.page(query({ q: 'any.echo.t00002' }))).tasks)).toEqual([
        'any.echo.t00002',
      ]);
      expect(ids((await history.page(query({ q: 'haiku' }))).tasks)).toEqual([
        'any.echo.t00003',
        'any.echo.t00001',
      ]);
      expect(ids((await history.page(query({ q: 'Haiku', tenant: 'acme' }))).tasks)).toEqual([
        'any.echo.t00001',
      ]);
      expect((await history.page(query({ q: 'nothing like it' }))).tasks).toEqual([]);

      // Past MAX_SCAN records without a hit, a page stops and says where to go on.
      const filler = Array.from({ length: MAX_SCAN + 100 }, (_, n) =>
        task(1_000 + n, { prompt: 'filler' }),
      );
      await history.write(filler);
      const first = await history.page(query({ q: 'haiku' }));
      expect(first.tasks).toEqual([]);
      expect(first.nextCursor).toBeDefined();
      const found = await allPages(history, query({ q: 'haiku' }));
      expect(ids(found)).toEqual(['any.echo.t00003', 'any.echo.t00001']);
    });

    it('pages through several filters whose tasks are few among many', async () => {
      const history = await open();
      // Each index alone holds more than a page may read: the page stops and goes on.
      const many = MAX_SCAN + 10;
      await history.write([
        task(1, { tenant: 'acme', state: 'failed' }),
        task(2, { tenant: 'acme', state: 'failed' }),
        ...Array.from({ length: many }, (_, n) => task(10 + n, { tenant: 'acme' })),
        ...Array.from({ length: many }, (_, n) =>
          task(10 + many + n, { tenant: 'beta', state: 'failed' }),
        ),
      ]);
      const first = await history.page(query({ tenant: 'acme', state: 'failed' }));
      expect(first.tasks.length === 2 || first.nextCursor !== undefined).toBe(true);
      const found = await allPages(history, query({ tenant: 'acme', state: 'failed' }));
      expect(ids(found)).toEqual(['any.echo.t00002', 'any.echo.t00001']);
    });

    it('trims tasks submitted before the retention, with their timelines and usage', async () => {
      const history = await open();
      await history.write([
        task(1, { at: T0 }),
        task(2, { at: T0 + HOUR, worker: 'w9' }),
        task(3, { at: T0 + 2 * HOUR }),
      ]);
      expect(await history.trim(T0 + HOUR + 1)).toBe(2);
      expect(ids((await history.page(query())).tasks)).toEqual(['any.echo.t00003']);
      expect((await history.page(query({ workerId: 'w9' }))).tasks).toEqual([]);
      expect(await history.timeline('any.echo.t00001')).toBeUndefined();
      const usage = await history.usage({ from: T0, to: T0 + 3 * HOUR, groupBy: [] });
      expect(usage).toEqual([expect.objectContaining({ requests: 1 })]);
      expect(await history.trim(T0)).toBe(0);
    });

    it('sums usage of finished tasks per tenant, model, worker, hour and day', async () => {
      const history = await open();
      await history.write([
        task(1, { at: T0, tenant: 'acme', model: 'echo', worker: 'w1', tokens: [10, 20] }),
        task(2, { at: T0 + 1, tenant: 'acme', model: 'llama', worker: 'w2', computeMs: 2_000 }),
        task(3, { at: T0 + HOUR, tenant: 'beta', model: 'echo', worker: 'w1', state: 'failed' }),
        task(4, { at: T0 + HOUR + 5, tenant: 'acme', model: 'echo', cached: true, computeMs: 0 }),
        task(5, { at: T0 + 25 * HOUR, tenant: 'acme', model: 'echo', worker: 'w1' }),
        task(6, { at: T0 + 2 * HOUR, tenant: 'acme', state: 'running' }),
      ]);
      const day = { from: T0, to: T0 + 24 * HOUR };
      expect(await history.usage({ ...day, groupBy: ['tenant'] })).toEqual([
        {
          tenant: 'acme',
          requests: 3,
          completed: 3,
          inputTokens: 16,
          outputTokens: 30,
          computeSeconds: 2.008,
          cacheHits: 1,
        },
        {
          tenant: 'beta',
          requests: 1,
          completed: 0,
          inputTokens: 3,
          outputTokens: 5,
          computeSeconds: 0.008,
          cacheHits: 0,
        },
      ]);
      const byModel = await history.usage({ ...day, groupBy: ['tenant', 'model'] });
      expect(byModel.map((r) => [r.tenant, r.model, r.requests])).toEqual([
        ['acme', 'echo', 2],
        ['acme', 'llama', 1],
        ['beta', 'echo', 1],
      ]);
      const byWorker = await history.usage({ ...day, groupBy: ['worker'] });
      expect(byWorker.map((r) => [r.workerId, r.requests])).toEqual([
        ['w1', 3],
        ['w2', 1],
      ]);
      const byHour = await history.usage({ ...day, groupBy: ['hour'], tenant: 'acme' });
      expect(byHour.map((r) => [r.period, r.requests])).toEqual([
        [T0, 2],
        [T0 + HOUR, 1],
      ]);
      const byDay = await history.usage({ from: T0, to: T0 + 48 * HOUR, groupBy: ['day'] });
      expect(byDay.map((r) => [r.period, r.requests])).toEqual([
        [T0, 4],
        [T0 + 24 * HOUR, 1],
      ]);
      expect(await history.usage({ from: T0 + 3 * HOUR, to: T0 + 4 * HOUR, groupBy: [] })).toEqual(
        [],
      );
    });

    it('merges updates from several masters: an older fact never replaces a newer one', async () => {
      const history = await open();
      const id = 'any.echo.merge';
      // The finishing master writes first; the submitting master's and an older running state later.
      await history.write([
        {
          id,
          state: 'completed',
          stateAt: T0 + 500,
          attempts: 2,
          workerId: 'w2',
          finishedAt: T0 + 500,
          totalMs: 500,
          inputTokens: 1,
          outputTokens: 2,
          computeMs: 100,
          cached: false,
          events: [{ at: T0 + 500, kind: 'completed', attempt: 2, workerId: 'w2' }],
        },
      ]);
      await history.write([
        {
          id,
          tenant: 'acme',
          model: 'echo',
          prompt: 'hello',
          submittedAt: T0,
          state: 'queued',
          stateAt: T0,
          priority: 1,
          priorityAt: T0,
          attempts: 0,
          events: [{ at: T0, kind: 'queued' }],
        },
      ]);
      await history.write([
        {
          id,
          state: 'running',
          stateAt: T0 + 100,
          attempts: 1,
          workerId: 'w1',
          tenant: 'other',
          priority: 9,
          priorityAt: T0 + 50,
          events: [
            { at: T0 + 50, kind: 'reprioritized', detail: '9' },
            { at: T0 + 100, kind: 'assigned', attempt: 1, workerId: 'w1' },
          ],
        },
      ]);
      await history.write([{ id, priority: 5, priorityAt: T0 + 10, events: [] }]);
      const timeline = await history.timeline(id);
      expect(timeline?.task).toMatchObject({
        id,
        state: 'completed',
        tenant: 'acme',
        attempts: 2,
        workerId: 'w2',
        priority: 9,
        prompt: 'hello',
        finishedAt: T0 + 500,
      });
      expect(timeline?.events.map((e) => e.kind)).toEqual([
        'queued',
        'reprioritized',
        'assigned',
        'completed',
      ]);
      expect(ids((await history.page(query({ workerId: 'w2' }))).tasks)).toEqual([id]);
      expect((await history.page(query({ workerId: 'w1' }))).tasks).toEqual([]);
      expect(ids((await history.page(query({ state: 'completed' }))).tasks)).toEqual([id]);
      expect((await history.page(query({ state: 'running' }))).tasks).toEqual([]);

      // Among running states the later wins, whatever order they arrive in.
      const other = 'any.echo.merge2';
      await history.write([{ ...task(9, { state: 'queued' }), id: other }]);
      await history.write([{ id: other, state: 'queued', stateAt: T0 + 20_000, events: [] }]);
      await history.write([
        { id: other, state: 'running', stateAt: T0 + 10_000, attempts: 1, events: [] },
      ]);
      expect((await history.timeline(other))?.task.state).toBe('queued');
    });
  });
}
