/**
 * An alert seen in the operator console, in real Chromium against a real
 * master: a backlog builds behind a worker held busy, the `backlog` alert
 * fires in the Alerts tab (and in the overview's count), and once the worker
 * drains the queue it resolves there, live, without a reload.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { launchBrowser } from '../../helpers/browser.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { startTestMaster } from '../master/support.ts';
import {
  ADMIN,
  type GatedWorker,
  LIVE,
  openConsole,
  startGatedWorker,
  submit,
  taskIn,
} from './console-support.ts';

const MODEL = 'm-console-backlog';

let redis: RedisServer;
let master: MasterHandle;
let worker: GatedWorker | undefined;
let browser: Browser;
let context: BrowserContext | undefined;
let page: Page;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: {
      API_TOKENS: `ops:${ADMIN}:admin`,
      // More than two tasks waiting for a second fires; nothing else may.
      ALERT_BACKLOG_TASKS: '2',
      ALERT_BACKLOG_SECONDS: '1',
      ALERT_NO_WORKER_SECONDS: '0',
      ALERT_WORKER_DOWN_SECONDS: '0',
    },
  });
  worker = await startGatedWorker(master, 'cb-gated', { MODELS: MODEL, SLOTS: '1' });
  browser = await launchBrowser();
  ({ context, page } = await openConsole(browser, master, { token: ADMIN, tab: 'overview' }));
  await page.locator(LIVE).waitFor();
}, 60_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await worker?.handle.close();
  await master?.close();
  await redis?.stop();
});

describe('console: an alert on a backlog', () => {
  it('fires while tasks wait behind a busy worker, and clears once they are done', async () => {
    const gated = worker as GatedWorker;
    const prompts = ['held', 'waits-1', 'waits-2', 'waits-3'];
    const first = await submit(master, 'held', MODEL);
    await waitFor(() => gated.provider.running.has('held') || undefined, { what: 'held running' });
    const ids = [first];
    for (const prompt of prompts.slice(1)) ids.push(await submit(master, prompt, MODEL));

    // The overview counts it, then the Alerts tab shows it.
    await page.getByTestId('stat-alerts').filter({ hasText: /^1$/ }).waitFor({ timeout: 15_000 });
    await page.getByTestId('alerts-badge').filter({ hasText: /^1$/ }).waitFor();
    await page.getByTestId('tab-alerts').click();
    const firing = page.getByTestId('alerts-firing').locator('[data-rule="backlog"]');
    await firing.waitFor({ timeout: 15_000 });
    await expect(firing.textContent()).resolves.toMatch(/3 tasks|queued|backlog/i);

    // The worker works through the queue: each task released as it starts.
    for (const prompt of prompts) {
      await waitFor(() => gated.provider.running.has(prompt) || undefined, {
        what: `${prompt} running`,
      });
      gated.provider.release(prompt);
    }
    for (const id of ids) await taskIn(master, id, ['completed']);

    await firing.waitFor({ state: 'detached', timeout: 15_000 });
    const resolved = page.getByTestId('alerts-recent').locator('[data-rule="backlog"]');
    await resolved.waitFor();
    await expect(page.getByTestId('alerts-summary').getAttribute('data-firing')).resolves.toBe('0');
  });
});
