/**
 * The operator console's Tasks, Usage, Alerts, Audit and Test views in real
 * Chromium against a real master (Redis store, embedded aedes) and real echo
 * workers: the task history with its filters, detail, timeline and actions,
 * exports that download and parse, the usage report, live alerts, the audit
 * trail and a load run from the Test panel.
 */
import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_ACTIONS } from '../../../proto/src/schemas/audit.ts';
import type { AlertsResponse } from '../../../proto/src/schemas/console.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { launchBrowser } from '../../helpers/browser.ts';
import { randomName } from '../../helpers/random-name.ts';
import { llamaStatus, startRawWorker } from '../../helpers/raw-worker.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../master/support.ts';

let redis: RedisServer;
let master: Awaited<ReturnType<typeof startTestMaster>>;
const workers: WorkerHandle[] = [];
let browser: Browser;
let context: BrowserContext;
let page: Page;

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** A word no other prompt holds, so a search finds exactly its task. */
const MARK = randomName('marker').replace(/[^a-z0-9]/gi, '');

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await api<{ id: string }>(master, '/api/tasks', { body: { model: 'echo', ...body } });
  expect(res.status).toBe(202);
  return res.body.id;
}

const getTask = async (id: string) => (await api<TaskView>(master, `/api/tasks/${id}`)).body;

async function finished(ids: string[]): Promise<TaskView[]> {
  return waitFor(
    async () => {
      const views = await Promise.all(ids.map(getTask));
      return views.every((v) => TERMINAL.has(v.state)) ? views : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: `${ids.length} tasks to finish` },
  );
}

/** Loads the console afresh on a tab and waits for its view to have mounted. */
async function openTab(id: string, ready: string) {
  await page.goto('about:blank');
  await page.goto(`${master.httpUrl}/console#${id}`);
  await page.getByTestId(`panel-${id}`).getByTestId(ready).waitFor({ state: 'attached' });
}

/** RFC 4180 rows: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

async function downloadText(testid: string): Promise<{ name: string; text: string }> {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId(testid).click(),
  ]);
  const path = await download.path();
  return { name: download.suggestedFilename(), text: await readFile(path, 'utf8') };
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { ALERT_WORKER_DOWN_SECONDS: '1' },
  });
  workers.push(
    await startTestWorker(master, { WORKER_ID: 'cv-a', SLOTS: '4', ECHO_DELAY_MS: '5' }),
    await startTestWorker(master, { WORKER_ID: 'cv-b', SLOTS: '4', ECHO_DELAY_MS: '5' }),
  );
  await waitFor(
    async () =>
      (await api<{ workers: WorkerView[] }>(master, '/api/workers')).body.workers.length === 2 ||
      undefined,
    { what: 'workers online' },
  );
  browser = await launchBrowser();
  context = await browser.newContext({
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(10_000);
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
}, 60_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  for (const w of workers) await w.close();
  await master?.close();
  await redis?.stop();
});

describe('console: Tasks', () => {
  let ids: string[] = [];

  beforeAll(async () => {
    ids = [
      await submit({ prompt: `first ${MARK} task` }),
      await submit({ prompt: 'second plain task' }),
      await submit({ prompt: 'third plain task' }),
    ];
    await finished(ids);
  });

  it('lists submitted tasks, filters by state and finds one by its prompt text', async () => {
    await openTab('tasks', 'tasks-table');
    const table = page.getByTestId('tasks-table');
    for (const id of ids) await table.locator(`tr[data-key="${id}"]`).waitFor();
    await expect(table.locator(`tr[data-key="${ids[0]}"]`).textContent()).resolves.toMatch(
      /completed.*echo.*cv-/s,
    );

    await page.getByTestId('tasks-state').selectOption('failed');
    await table.locator(`tr[data-key="${ids[0]}"]`).waitFor({ state: 'detached' });
    await page.getByTestId('tasks-state').selectOption('completed');
    await table.locator(`tr[data-key="${ids[0]}"]`).waitFor();

    await page.getByTestId('tasks-search').fill(MARK);
    await table.locator(`tr[data-key="${ids[1]}"]`).waitFor({ state: 'detached' });
    await expect(table.locator('tbody tr').count()).resolves.toBe(1);
    await expect(page.getByTestId('tasks-status').textContent()).resolves.toBe('1 task');
  });

  it('opens a task: facts, the timeline from queued to completed, and the answer', async () => {
    await openTab('tasks', 'tasks-table');
    await page.getByTestId('tasks-table').locator(`tr[data-key="${ids[0]}"] button`).click();
    const detail = page.getByTestId('task-detail');
    await page.locator('[data-testid="task-detail"][data-state="completed"]').waitFor();
    const timeline = detail.getByTestId('task-timeline');
    await timeline.locator('[data-kind="completed"]').waitFor();
    const kinds = await timeline
      .locator('li')
      .evaluateAll((lis) => lis.map((li) => li.getAttribute('data-kind')));
    expect(kinds[0]).toBe('queued');
    expect(kinds).toContain('assigned');
    expect(kinds.at(-1)).toBe('completed');
    await expect(detail.getByTestId('task-output').textContent()).resolves.toContain(
      `echo: first ${MARK} task`,
    );
    await expect(detail.getByTestId('task-cancel').isDisabled()).resolves.toBe(true);
  });

  it('re-prioritises and cancels a queued task from its detail, then retries it', async () => {
    // No worker carries this label: the task stays queued until cancelled.
    const id = await submit({ prompt: `stuck ${MARK}`, requires: { labels: { zone: 'nowhere' } } });
    await openTab('tasks', 'tasks-table');
    await page.getByTestId('tasks-search').fill(id);
    const row = page.getByTestId('tasks-table').locator(`tr[data-key="${id}"]`);
    await row.locator('button').click();
    const detail = page.getByTestId('task-detail');
    const result = detail.getByTestId('task-action-result');

    await detail.getByTestId('priority-input').fill('900');
    await detail.getByTestId('task-reprioritize').click();
    await result.filter({ hasText: 'Priority is now 900' }).waitFor();
    expect((await getTask(id)).priority).toBe(900);

    await detail.getByTestId('task-cancel').click();
    await result.filter({ hasText: /^Cancelled/ }).waitFor();
    expect((await getTask(id)).state).toBe('cancelled');
    await detail.getByTestId('task-timeline').locator('[data-kind="cancelled"]').waitFor();
    await row.locator('.cv-state-cancelled').waitFor();

    await detail.getByTestId('task-retry').click();
    await result.filter({ hasText: /Retried as|Queued again/ }).waitFor();
    const text = (await result.textContent()) ?? '';
    const retried = /Retried as (\S+?)\.? /.exec(text)?.[1] ?? id;
    await waitFor(async () => (await getTask(retried)).state === 'queued' || undefined, {
      what: 'the retried task queued',
    });
    await api(master, `/api/tasks/${retried}`, { method: 'DELETE' });
  });

  it("says the master's refusal when an action comes too late", async () => {
    // A context of its own with a controllable clock: the panel's refresh must not run between
    // the cancel behind its back and the click, or the button would already be disabled.
    const own = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    own.setDefaultTimeout(10_000);
    const p = await own.newPage();
    try {
      await p.clock.install();
      const id = await submit({
        prompt: `late ${MARK}`,
        requires: { labels: { zone: 'nowhere' } },
      });
      await p.goto(`${master.httpUrl}/console#tasks`);
      await p.getByTestId('tasks-search').fill(id);
      await p.getByTestId('tasks-table').locator(`tr[data-key="${id}"] button`).click();
      await p.locator('[data-testid="task-detail"][data-state="queued"]').waitFor();
      await p.clock.pauseAt(await p.evaluate(() => Date.now() + 50));

      expect((await api(master, `/api/tasks/${id}`, { method: 'DELETE' })).status).toBe(200);
      await p.getByTestId('task-cancel').click();
      const result = p.getByTestId('task-action-result');
      await result.filter({ hasText: /^The master refused: / }).waitFor();
      await expect(result.getAttribute('data-kind')).resolves.toBe('error');
      await p.locator('[data-testid="task-detail"][data-state="cancelled"]').waitFor();
      await expect(p.getByTestId('task-cancel').isDisabled()).resolves.toBe(true);
    } finally {
      await own.close();
    }
  });

  it('offers only the actions a finished task can take', async () => {
    const id = await submit({ prompt: `short ${MARK}` });
    await finished([id]);
    await openTab('tasks', 'tasks-table');
    await page.getByTestId('tasks-search').fill(id);
    await page.getByTestId('tasks-table').locator(`tr[data-key="${id}"] button`).click();
    const detail = page.getByTestId('task-detail');
    await detail.getByTestId('task-timeline').locator('[data-kind="completed"]').waitFor();
    // Buttons follow the state: nothing to cancel or re-prioritise once completed.
    await expect(detail.getByTestId('task-cancel').isDisabled()).resolves.toBe(true);
    await expect(detail.getByTestId('task-reprioritize').isDisabled()).resolves.toBe(true);
  });

  it('exports the current filter as CSV that parses, and as JSON', async () => {
    await openTab('tasks', 'tasks-table');
    await page.getByTestId('tasks-state').selectOption('completed');
    await page.getByTestId('tasks-table').locator(`tr[data-key="${ids[2]}"]`).waitFor();

    const csv = await downloadText('export-tasks-csv');
    expect(csv.name).toMatch(/^flota-tasks-.*\.csv$/);
    const [header, ...rows] = parseCsv(csv.text.trim());
    expect(header).toEqual(expect.arrayContaining(['id', 'state', 'tenant', 'model', 'prompt']));
    const at = (name: string) => header!.indexOf(name);
    const byId = new Map(rows.map((r) => [r[at('id')], r]));
    for (const id of ids) {
      const row = byId.get(id);
      expect(row, `CSV row for ${id}`).toBeDefined();
      expect(row![at('state')]).toBe('completed');
      expect(row![at('model')]).toBe('echo');
    }
    expect(rows.every((r) => r[at('state')] === 'completed')).toBe(true);
    expect(byId.get(ids[0])![at('prompt')]).toBe(`first ${MARK} task`);

    const json = await downloadText('export-tasks-json');
    expect(json.name).toMatch(/^flota-tasks-.*\.json$/);
    const page1 = JSON.parse(json.text) as { tasks: Array<{ id: string; state: string }> };
    expect(page1.tasks.map((t) => t.id)).toEqual(expect.arrayContaining(ids));
  });
});

describe('console: Usage', () => {
  it("shows the tenant's tasks and tokens, and exports usage and metrics", async () => {
    await finished([await submit({ prompt: `usage ${MARK}` })]);
    await openTab('usage', 'usage-table');
    const row = page.getByTestId('usage-table').locator('tbody tr', { hasText: 'default' });
    await row.waitFor();
    const cells = await row.locator('th, td').allTextContents();
    expect(cells[0]).toBe('default');
    expect(Number(cells[1]!.replace(/\D/g, ''))).toBeGreaterThanOrEqual(4);
    expect(Number(cells[4]!.replace(/\D/g, ''))).toBeGreaterThan(0);

    await page.getByTestId('usage-group-model').check();
    await page.getByTestId('usage-table').locator('thead th', { hasText: 'Model' }).waitFor();
    await page.getByTestId('usage-table').locator('tbody tr', { hasText: 'echo' }).waitFor();

    // A custom range starts as the last hour, to the end of the current minute.
    const before = await page.getByTestId('usage-status').textContent();
    await page.getByTestId('panel-usage').getByTestId('range-select').selectOption('custom');
    await page
      .getByTestId('usage-status')
      .filter({ hasNotText: before ?? '' })
      .waitFor();
    await page.getByTestId('usage-table').locator('tbody tr', { hasText: 'echo' }).waitFor();

    const csv = await downloadText('export-usage-csv');
    const [header, ...rows] = parseCsv(csv.text.trim());
    expect(header).toEqual(expect.arrayContaining(['tenant', 'model', 'requests']));
    expect(rows.some((r) => r[header!.indexOf('tenant')] === 'default')).toBe(true);

    const metrics = await downloadText('export-metrics-json');
    expect(metrics.name).toMatch(/^flota-metrics-.*\.json$/);
    expect(Array.isArray((JSON.parse(metrics.text) as { points: unknown[] }).points)).toBe(true);
    const metricsCsv = await downloadText('export-metrics-csv');
    expect(parseCsv(metricsCsv.text.trim())[0]).toEqual(expect.arrayContaining(['at']));
  });
});

describe('console: Alerts', () => {
  it('shows what GET /api/alerts says', async () => {
    const { body } = await api<AlertsResponse>(master, '/api/alerts');
    await openTab('alerts', 'alerts-summary');
    const summary = page.getByTestId('alerts-summary');
    await summary.filter({ hasText: /firing|Nothing is firing/ }).waitFor();
    await expect(summary.getAttribute('data-firing')).resolves.toBe(String(body.firing.length));
  });

  it('follows a worker going down, live', async () => {
    await openTab('alerts', 'alerts-summary');
    const spare = await startRawWorker('cv-spare', {
      mqttUrl: master.mqttUrl,
      credential: await master.issueWorkerCredential('cv-spare'),
      status: llamaStatus(['tiny']),
    });
    await waitFor(
      async () =>
        (await api<{ workers: WorkerView[] }>(master, '/api/workers')).body.workers.some(
          (w) => w.id === 'cv-spare' && w.state === 'online',
        ) || undefined,
      { what: 'spare online' },
    );
    // Gone without a clean stop: the status its broker will would carry.
    await spare.client.publishAsync(
      createTopics().status('cv-spare'),
      JSON.stringify({ state: 'offline', id: 'cv-spare' }),
      { retain: true, qos: 1 },
    );
    await spare.client.endAsync();
    const firing = page.getByTestId('alerts-firing').locator('[data-rule="worker_down"]', {
      hasText: 'cv-spare',
    });
    await firing.waitFor({ timeout: 30_000 });
    await expect(firing.locator('.cv-severity').textContent()).resolves.toMatch(/warning|critical/);
  });
});

describe('console: Audit', () => {
  it('lists the trail newest first and filters by action', async () => {
    expect((await api(master, '/api/workers/cv-b/drain', { body: {} })).status).toBe(200);
    expect((await api(master, '/api/workers/cv-b/resume', { body: {} })).status).toBe(200);
    await openTab('audit', 'audit-table');
    const table = page.getByTestId('audit-table');
    await table.locator('tbody tr', { hasText: 'worker.resume' }).waitFor();
    const actions = await table.locator('tbody tr th + td').allTextContents();
    expect(actions.indexOf('worker.resume')).toBeLessThan(actions.indexOf('worker.drain'));

    await page.getByTestId('audit-action').selectOption('worker.drain');
    await table.locator('tbody tr', { hasText: 'worker.resume' }).waitFor({ state: 'detached' });
    await expect(table.locator('tbody tr').count()).resolves.toBe(1);
    await expect(table.locator('tbody tr').textContent()).resolves.toContain('cv-b');

    const offered = await page
      .getByTestId('audit-action')
      .locator('option')
      .evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value).filter(Boolean));
    expect(offered).toEqual([...AUDIT_ACTIONS]);
  });
});

describe('console: Test panel', () => {
  it('runs 20 tasks at concurrency 4 and shows their latencies', async () => {
    await openTab('test', 'test-run');
    await page
      .getByTestId('test-model')
      .locator('option[value="echo"]')
      .waitFor({ state: 'attached' });
    await page.getByTestId('test-model').selectOption('echo');
    await page.getByTestId('test-count').fill('20');
    await page.getByTestId('test-concurrency').fill('4');
    await page.getByTestId('test-prompt').fill(`load ${MARK}`);
    await page.getByTestId('test-run').click();
    await page
      .getByTestId('test-progress')
      .filter({ hasText: /^Done: 20 tasks/ })
      .waitFor({ timeout: 30_000 });
    const results = page.getByTestId('test-results');
    for (const stat of ['stat-p50', 'stat-p95', 'stat-p99', 'stat-max']) {
      await expect(results.getByTestId(stat).textContent()).resolves.toMatch(/\d+(\.\d+)? m?s/);
    }
    await expect(results.getByTestId('stat-completed').textContent()).resolves.toBe('20');
    await expect(results.getByTestId('stat-failed').textContent()).resolves.toBe('0');
    await expect(
      results.getByTestId('test-histogram').locator('.cv-bar').count(),
    ).resolves.toBeGreaterThan(0);
  });

  it('never has more than the concurrency outstanding, and stops when asked', async () => {
    await openTab('test', 'test-run');
    await page
      .getByTestId('test-model')
      .locator('option[value="echo"]')
      .waitFor({ state: 'attached' });
    // A slow prompt (about 1.5 s per task) so the run is still going when stopped.
    await page.getByTestId('test-prompt').fill(`slow ${'x'.repeat(16 * 300)}`);
    await page.getByTestId('test-count').fill('50');
    await page.getByTestId('test-concurrency').fill('3');
    await page.getByTestId('test-run').click();
    await page
      .getByTestId('test-progress')
      .filter({ hasText: /3 running/ })
      .waitFor();
    const queuedOrRunning = async () => {
      const { body } = await api<{ tasks: Array<{ state: string }> }>(
        master,
        `/api/tasks?q=slow&limit=500`,
      );
      return body.tasks.filter((t) => t.state === 'queued' || t.state === 'running').length;
    };
    // Sampled until lanes have moved on to later tasks: never more than 3 at once.
    let most = 0;
    await waitFor(
      async () => {
        most = Math.max(most, await queuedOrRunning());
        const text = (await page.getByTestId('test-progress').textContent()) ?? '';
        return Number(/^(\d+) of 50 finished/.exec(text)?.[1] ?? 0) >= 4 || undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'four tasks of the run to finish' },
    );
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(3);
    await page.getByTestId('test-stop').click();
    await page
      .getByTestId('test-progress')
      .filter({ hasText: /^Stopped after/ })
      .waitFor();
    await waitFor(async () => (await queuedOrRunning()) === 0 || undefined, {
      what: 'stopped run to leave nothing running',
    });
  });
});

describe('console: Tasks paging', () => {
  it('pages to older tasks and back to the newest', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i += 1) ids.push(await submit({ prompt: `page ${MARK} ${i}` }));
    await finished(ids);
    await openTab('tasks', 'tasks-table');
    await page.getByTestId('tasks-search').fill(`page ${MARK}`);
    const table = page.getByTestId('tasks-table');
    await table.locator(`tr[data-key="${ids[59]}"]`).waitFor();
    await table.locator(`tr[data-key="${ids[10]}"]`).waitFor();
    await expect(table.locator('tbody tr').count()).resolves.toBe(50);

    await page.getByRole('button', { name: 'Older tasks' }).click();
    await table.locator(`tr[data-key="${ids[0]}"]`).waitFor();
    const older = await table
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')));
    expect(older).toEqual(ids.slice(0, 10).reverse());
    await expect(page.getByRole('button', { name: 'Older tasks' }).isDisabled()).resolves.toBe(
      true,
    );

    await page.getByRole('button', { name: 'Back to the newest tasks' }).click();
    await table.locator(`tr[data-key="${ids[59]}"]`).waitFor();
    await expect(table.locator('tbody tr').count()).resolves.toBe(50);
  });
});

describe('console views at 390 px', () => {
  it('never make the page scroll sideways: wide tables scroll inside their box', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    try {
      for (const [tab, ready] of [
        ['tasks', 'tasks-table'],
        ['usage', 'usage-table'],
        ['alerts', 'alerts-summary'],
        ['audit', 'audit-table'],
        ['test', 'test-run'],
      ] as const) {
        await openTab(tab, ready);
        const view = page.getByTestId(`panel-${tab}`).locator('.cv-view');
        const [scroll, client] = await view.evaluate((el) => [el.scrollWidth, el.clientWidth]);
        expect(scroll, `${tab} view width`).toBeLessThanOrEqual(client);
      }
    } finally {
      await page.setViewportSize({ width: 1400, height: 900 });
    }
  });
});
