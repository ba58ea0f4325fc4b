/**
 * The task history end to end: a real master (Redis store, embedded broker)
 * and an echo worker run tasks of two tenants; then the history answers
 * `GET /api/tasks` (filters, search, a user's own tenant only), timelines,
 * a CSV export, a retry, `GET /api/usage` (JSON and CSV) and the usage
 * counters on /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_CSV_COLUMNS, USAGE_CSV_COLUMNS } from '../../../master/src/http/history-routes.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import type {
  TaskPage,
  TaskSummary,
  TaskTimeline,
  UsageReport,
} from '../../../proto/src/schemas/console.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { startTestMaster, startTestWorker } from './support.ts';

const ADMIN = 'th-admin-token-0123456789abcdef';
const ACME = 'th-acme-token-0123456789abcdef';
const BETA = 'th-beta-token-0123456789abcdef';
const WORKER = 'th-echo';

let redis: RedisServer;
let master: MasterHandle;
let echo: WorkerHandle;

interface Answer<T> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

async function call<T = unknown>(
  path: string,
  token: string,
  init: { method?: string; body?: unknown } = {},
): Promise<Answer<T>> {
  const res = await fetch(`${master.httpUrl}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined;
  return { status: res.status, body: json as T, text, headers: res.headers };
}

/** RFC 4180: fields split on commas outside quotes, `""` inside quotes is one quote, CRLF rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

const submit = async (token: string, body: Record<string, unknown>) => {
  const answer = await call<{ id: string }>('/api/tasks', token, { body });
  expect(answer.status).toBe(202);
  return answer.body.id;
};

const STRANGE_PROMPT = 'a "quoted", comma\nand a new line';

const ids: { acme: string[]; beta: string[]; cancelled: string } = {
  acme: [],
  beta: [],
  cancelled: '',
};

/** The whole history as the admin sees it, once every listed task has ended. */
const allEnded = async (expected: number) =>
  waitFor(
    async () => {
      const { body } = await call<TaskPage>('/api/tasks?limit=500', ADMIN);
      const ended = body.tasks.filter((t) => t.finishedAt !== undefined);
      return ended.length >= expected ? body.tasks : undefined;
    },
    { what: `${expected} tasks ended in the history`, timeoutMs: 20_000 },
  );

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${ADMIN}:admin,acme:${ACME},beta:${BETA}`, CACHE_TTL_S: '60' },
  });
  echo = await startTestWorker(master, { WORKER_ID: WORKER });
  await waitFor(
    async () =>
      ((await call<{ workers: unknown[] }>('/api/workers', ADMIN)).body.workers ?? []).length === 1,
    { what: 'the echo worker online' },
  );
  for (const n of [1, 2, 3]) {
    ids.acme.push(await submit(ACME, { prompt: `acme prompt ${n} about the SEA`, model: 'echo' }));
  }
  ids.acme.push(await submit(ACME, { prompt: STRANGE_PROMPT, model: 'echo' }));
  for (const n of [1, 2]) ids.beta.push(await submit(BETA, { prompt: `beta prompt ${n}` }));
  // No worker carries this label: the task waits until it is cancelled.
  ids.cancelled = await submit(ACME, {
    prompt: 'waits for nobody',
    model: 'echo',
    requires: { labels: { zone: 'nowhere' } },
    priority: 5,
  });
  expect(
    (await call(`/api/tasks/${ids.cancelled}`, ACME, { method: 'PATCH', body: { priority: 7 } }))
      .status,
  ).toBe(200);
  expect((await call(`/api/tasks/${ids.cancelled}`, ACME, { method: 'DELETE' })).status).toBe(200);
  await allEnded(7);
}, 60_000);

afterAll(async () => {
  await echo?.close();
  await master?.close();
  await redis?.stop();
});

describe('GET /api/tasks', () => {
  it('lists every tenant for an admin, newest first, with what each task cost', async () => {
    const { status, body, headers } = await call<TaskPage>('/api/tasks', ADMIN);
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(body.tasks.map((t) => t.id)).toEqual(
      [...ids.acme, ...ids.beta, ids.cancelled].sort((a, b) => {
        const at = (id: string) => body.tasks.find((t) => t.id === id)?.submittedAt ?? 0;
        return at(b) - at(a) || (a < b ? 1 : -1);
      }),
    );
    const done = body.tasks.find((t) => t.id === ids.acme[0]) as TaskSummary;
    expect(done).toMatchObject({
      state: 'completed',
      tenant: 'acme',
      model: 'echo',
      attempts: 1,
      workerId: WORKER,
      prompt: 'acme prompt 1 about the SEA',
      cached: false,
    });
    expect(done.inputTokens).toBeGreaterThan(0);
    expect(done.outputTokens).toBeGreaterThan(0);
    expect(done.totalMs).toBeGreaterThanOrEqual(0);
    expect(body.tasks.find((t) => t.id === ids.cancelled)).toMatchObject({
      state: 'cancelled',
      priority: 7,
      error: 'cancelled by the user',
    });
  });

  it('shows a user its own tenant only, whatever tenant it asks for', async () => {
    const own = await call<TaskPage>('/api/tasks', BETA);
    expect(own.body.tasks.map((t) => t.id).sort()).toEqual([...ids.beta].sort());
    const asked = await call<TaskPage>('/api/tasks?tenant=acme', BETA);
    expect(asked.body.tasks.every((t) => t.tenant === 'beta')).toBe(true);
    const admin = await call<TaskPage>('/api/tasks?tenant=beta', ADMIN);
    expect(admin.body.tasks.map((t) => t.id).sort()).toEqual([...ids.beta].sort());
  });

  it('filters by state, model, worker, time, and searches ids and prompts', async () => {
    const of = async (query: string, token = ADMIN) =>
      (await call<TaskPage>(`/api/tasks?${query}`, token)).body.tasks.map((t) => t.id);
    expect(await of('state=cancelled')).toEqual([ids.cancelled]);
    expect((await of('state=completed')).length).toBe(6);
    expect((await of(`workerId=${WORKER}`)).length).toBe(6);
    expect((await of('model=echo')).length).toBe(7);
    expect(await of('from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z')).toEqual([]);
    expect((await of('q=the%20sea')).sort()).toEqual([...ids.acme.slice(0, 3)].sort());
    expect(await of(`q=${encodeURIComponent(ids.beta[1] as string)}`)).toEqual([ids.beta[1]]);
    expect(await of(`q=${encodeURIComponent(ids.beta[1] as string)}`, ACME)).toEqual([]);
  });

  it('pages with nextCursor', async () => {
    const first = await call<TaskPage>('/api/tasks?limit=4', ADMIN);
    expect(first.body.tasks).toHaveLength(4);
    const cursor = first.body.nextCursor as string;
    const second = await call<TaskPage>(
      `/api/tasks?limit=4&cursor=${encodeURIComponent(cursor)}`,
      ADMIN,
    );
    expect(second.body.tasks).toHaveLength(3);
    expect(second.body.nextCursor).toBeUndefined();
    const seen = [...first.body.tasks, ...second.body.tasks].map((t) => t.id);
    expect(new Set(seen).size).toBe(7);
  });

  it('refuses a bad query with 400', async () => {
    for (const query of ['limit=0', 'state=lost', 'cursor=nope', 'colour=red', 'format=xml']) {
      const answer = await call<{ code: string }>(`/api/tasks?${query}`, ADMIN);
      expect(answer.status, query).toBe(400);
      expect(answer.body.code).toBe('bad_request');
    }
  });

  it('exports the same page as CSV', async () => {
    const json = await call<TaskPage>('/api/tasks?tenant=acme', ADMIN);
    const csv = await call('/api/tasks?tenant=acme&format=csv', ADMIN);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="flota-tasks.csv"');
    const [header, ...rows] = parseCsv(csv.text);
    expect(header).toEqual([...TASK_CSV_COLUMNS]);
    expect(rows.map((r) => r[0])).toEqual(json.body.tasks.map((t) => t.id));
    const column = (name: (typeof TASK_CSV_COLUMNS)[number]) => TASK_CSV_COLUMNS.indexOf(name);
    const strange = rows.find((r) => r[0] === ids.acme[3]) as string[];
    expect(strange[column('prompt')]).toBe(STRANGE_PROMPT);
    expect(strange[column('state')]).toBe('completed');
    expect(strange[column('tenant')]).toBe('acme');
    expect(strange[column('workerId')]).toBe(WORKER);
  });
});

describe('GET /api/tasks/:id/timeline', () => {
  it("tells a task's story in order", async () => {
    const done = await call<TaskTimeline>(`/api/tasks/${ids.acme[0]}/timeline`, ACME);
    expect(done.status).toBe(200);
    expect(done.body.task.id).toBe(ids.acme[0]);
    expect(done.body.events.map((e) => e.kind)).toEqual(['queued', 'assigned', 'completed']);
    expect(done.body.events[1]).toMatchObject({ attempt: 1, workerId: WORKER });
    const ats = done.body.events.map((e) => e.at);
    expect(ats).toEqual([...ats].sort((a, b) => a - b));

    const cancelled = await call<TaskTimeline>(`/api/tasks/${ids.cancelled}/timeline`, ADMIN);
    expect(cancelled.body.events.map((e) => [e.kind, e.detail])).toEqual([
      ['queued', undefined],
      ['reprioritized', '7'],
      ['cancelled', 'cancelled by the user'],
    ]);
  });

  it("answers 404 for an unknown task and for another tenant's", async () => {
    expect((await call(`/api/tasks/${ids.acme[0]}/timeline`, BETA)).status).toBe(404);
    expect((await call('/api/tasks/any.echo.nope/timeline', ADMIN)).status).toBe(404);
  });
});

describe('POST /api/tasks/:id/retry', () => {
  it('submits a cancelled task again as a new task of its tenant; 409 for a completed one', async () => {
    expect((await call(`/api/tasks/${ids.acme[0]}/retry`, ACME, { method: 'POST' })).status).toBe(
      409,
    );
    expect((await call(`/api/tasks/${ids.cancelled}/retry`, BETA, { method: 'POST' })).status).toBe(
      404,
    );
    const retried = await call<{ id: string }>(`/api/tasks/${ids.cancelled}/retry`, ADMIN, {
      method: 'POST',
    });
    expect(retried.status).toBe(202);
    expect(retried.headers.get('location')).toBe(`/api/tasks/${retried.body.id}`);
    expect(retried.body.id).not.toBe(ids.cancelled);
    const task = await call<{ priority: number; requires: unknown; state: string }>(
      `/api/tasks/${retried.body.id}`,
      ACME,
    );
    expect(task.status).toBe(200); // the new task is acme's
    expect(task.body).toMatchObject({
      priority: 7,
      requires: { gpu: false, labels: { zone: 'nowhere' } },
    });
    const summary = await waitFor(
      async () =>
        (await call<TaskPage>(`/api/tasks?q=${encodeURIComponent(retried.body.id)}`, ACME)).body
          .tasks[0],
      { what: 'the retried task in the history' },
    );
    expect(summary).toMatchObject({ tenant: 'acme', prompt: 'waits for nobody', state: 'queued' });
    expect((await call(`/api/tasks/${retried.body.id}`, ACME, { method: 'DELETE' })).status).toBe(
      200,
    );
  });
});

describe('GET /api/usage', () => {
  it('sums finished tasks per tenant and model; a user sees its own tenant', async () => {
    const admin = await call<UsageReport>('/api/usage?groupBy=tenant,model', ADMIN);
    expect(admin.status).toBe(200);
    expect(admin.body.groupBy).toEqual(['tenant', 'model']);
    expect(admin.body.to - admin.body.from).toBe(24 * 3_600_000);
    const acme = admin.body.rows.find((r) => r.tenant === 'acme');
    const beta = admin.body.rows.find((r) => r.tenant === 'beta');
    expect(acme).toMatchObject({ model: 'echo', completed: 4, cacheHits: 0 });
    expect(acme?.requests).toBeGreaterThanOrEqual(5); // 4 completed, the cancelled one (and maybe its retry)
    expect(acme?.inputTokens).toBeGreaterThan(0);
    expect(beta).toMatchObject({ model: 'echo', requests: 2, completed: 2 });

    const user = await call<UsageReport>('/api/usage?groupBy=tenant&tenant=beta', ACME);
    expect(user.body.rows.map((r) => r.tenant)).toEqual(['acme']);

    const hourly = await call<UsageReport>('/api/usage?groupBy=worker,hour', ADMIN);
    const worked = hourly.body.rows.filter((r) => r.workerId === WORKER);
    expect(worked.reduce((n, r) => n + r.completed, 0)).toBe(6);
    expect(worked.every((r) => r.period !== undefined && r.period % 3_600_000 === 0)).toBe(true);

    expect((await call('/api/usage?groupBy=colour', ADMIN)).status).toBe(400);
  });

  it('exports the rows as CSV', async () => {
    const csv = await call('/api/usage?groupBy=tenant&format=csv', ADMIN);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="flota-usage.csv"');
    const [header, ...rows] = parseCsv(csv.text);
    expect(header).toEqual([...USAGE_CSV_COLUMNS]);
    const beta = rows.find((r) => r[0] === 'beta') as string[];
    expect(beta[USAGE_CSV_COLUMNS.indexOf('requests')]).toBe('2');
    expect(beta[USAGE_CSV_COLUMNS.indexOf('model')]).toBe('');
  });
});

describe('usage on /metrics', () => {
  it('counts requests, tokens, compute and cache hits per tenant and model', async () => {
    const text = await (await fetch(`${master.httpUrl}/metrics`)).text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(
      value('flota_usage_requests_total{tenant="acme",model="echo",outcome="completed"}'),
    ).toBe(4);
    expect(
      value('flota_usage_requests_total{tenant="beta",model="echo",outcome="completed"}'),
    ).toBe(2);
    expect(
      value('flota_usage_requests_total{tenant="acme",model="echo",outcome="cancelled"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value('flota_usage_tokens_total{tenant="beta",model="echo",direction="input"}'),
    ).toBeGreaterThan(0);
    expect(
      value('flota_usage_tokens_total{tenant="beta",model="echo",direction="output"}'),
    ).toBeGreaterThan(0);
    expect(text).toContain('# TYPE flota_usage_compute_seconds_total counter');
    expect(text).toContain('# TYPE flota_usage_cache_hits_total counter');
  });
});

describe('an answer from the result cache', () => {
  it('is a cache hit in the history, in usage and on /metrics', async () => {
    const first = await submit(BETA, { prompt: 'the same question', model: 'echo' });
    await waitFor(
      async () =>
        (await call<{ state: string }>(`/api/tasks/${first}`, BETA)).body.state === 'completed',
      { what: 'the first answer' },
    );
    const second = await submit(BETA, { prompt: 'the same question', model: 'echo' });
    const summary = await waitFor(
      async () =>
        (await call<TaskPage>(`/api/tasks?q=${encodeURIComponent(second)}`, BETA)).body.tasks[0],
      { what: 'the cached answer in the history' },
    );
    expect(summary).toMatchObject({ state: 'completed', cached: true, attempts: 1 });
    const usage = await call<UsageReport>('/api/usage', BETA);
    expect(usage.body.rows).toMatchObject([{ tenant: 'beta', requests: 4, cacheHits: 1 }]);
    const text = await (await fetch(`${master.httpUrl}/metrics`)).text();
    expect(text).toContain('flota_usage_cache_hits_total{tenant="beta",model="echo"} 1');
  });
});
