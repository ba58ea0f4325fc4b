/**
 * Fleet control from the operator console, in Chromium, against a real
 * master and real workers (in-process, answers held until released): a
 * drain from a worker's row stops new assignments to it while its running
 * task finishes, and resume gives it work again; the emergency stop holds
 * the queue (the banner says so) and resuming from the banner drains it.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { FleetState } from '../../../proto/src/schemas/fleet.ts';
import { launchBrowser } from '../../helpers/browser.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api } from '../master/support.ts';
import {
  ADMIN,
  asAdmin,
  type GatedWorker,
  LIVE,
  openConsole,
  startConsoleMaster,
  startGatedWorker,
  submit,
  taskIn,
  taskOf,
  workerRow,
} from './console-support.ts';

let redis: RedisServer;
let master: MasterHandle;
let browser: Browser;
let context: BrowserContext | undefined;
const workers: GatedWorker[] = [];

beforeAll(async () => {
  redis = await startRedis();
  master = await startConsoleMaster(redis.url);
  browser = await launchBrowser();
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

afterAll(async () => {
  for (const w of workers) w.provider.releaseAll();
  await Promise.all(workers.map((w) => w.handle.close()));
  await browser?.close();
  await master?.close();
  await redis?.stop();
});

async function gated(id: string, model: string, slots: number) {
  const worker = await startGatedWorker(master, id, { MODELS: model, SLOTS: String(slots) });
  workers.push(worker);
  return worker;
}

async function consoleOn(tab: string): Promise<Page> {
  const opened = await openConsole(browser, master, { token: ADMIN, tab });
  context = opened.context;
  await opened.page.locator(LIVE).waitFor();
  return opened.page;
}

describe('console fleet control', () => {
  it('drains a worker from its row: its running task finishes, new work goes elsewhere; resume', async () => {
    const model = 'm-console-drain';
    const a = await gated('cd-drain-a', model, 2);
    const page = await consoleOn('workers');
    const row = workerRow(page, 'cd-drain-a');
    await row.and(page.locator('[data-health="online"]')).waitFor();

    const first = await submit(master, 'first', model);
    await waitFor(() => a.provider.running.has('first'), { what: 'first running on a' });
    await row.getByTestId('worker-slots').filter({ hasText: '1/2' }).waitFor();

    await row.getByTestId('worker-drain').click();
    await row.getByTestId('worker-outcome').filter({ hasText: 'drain: ok' }).waitFor();
    await row.and(page.locator('[data-health="draining"]')).waitFor();
    await expect(row.getByTestId('worker-health').textContent()).resolves.toBe('Draining');

    // a still has a free slot, but the next task waits for a worker that takes work.
    const b = await gated('cd-drain-b', model, 1);
    const second = await submit(master, 'second', model);
    expect((await taskIn(master, second, ['running'])).workerId).toBe('cd-drain-b');
    expect(a.provider.running.has('second')).toBe(false);

    a.provider.release('first');
    expect((await taskIn(master, first, ['completed'])).workerId).toBe('cd-drain-a');
    await row.getByTestId('worker-done').filter({ hasText: '1' }).waitFor();

    await row.getByTestId('worker-resume').click();
    await row.getByTestId('worker-outcome').filter({ hasText: 'resume: ok' }).waitFor();
    await row.and(page.locator('[data-health="online"]')).waitFor();
    const third = await submit(master, 'third', model);
    expect((await taskIn(master, third, ['running'])).workerId).toBe('cd-drain-a');
    a.provider.release('third');
    b.provider.release('second');
    await taskIn(master, third, ['completed']);
    await taskIn(master, second, ['completed']);

    // Live config from the row's dialog: the worker acknowledges, the row shows it.
    await row.getByTestId('worker-config').click();
    const dialog = page.getByTestId('config-dialog');
    await dialog.locator('input[name="slots"]').fill('3');
    await dialog.locator('input[name="labels"]').fill('zone=eu');
    await dialog.getByTestId('dialog-confirm').click();
    await row.getByTestId('worker-outcome').filter({ hasText: 'config: ok' }).waitFor();
    await row.getByTestId('worker-slots').filter({ hasText: '/3' }).waitFor();
  });

  it('cordons by label from the form and lifts the cordon', async () => {
    const model = 'm-console-cordon';
    await gated('cd-cordon-any', model, 1);
    await startGatedWorker(master, 'cd-cordon-us', { MODELS: model, LABELS: 'zone=us' }).then((w) =>
      workers.push(w),
    );
    const page = await consoleOn('workers');
    const other = workerRow(page, 'cd-cordon-any');
    const us = workerRow(page, 'cd-cordon-us');
    await us.and(page.locator('[data-health="online"]')).waitFor();

    await page.getByTestId('cordon-label').fill('zone=us');
    // Waiting from before the click: the toast goes away after a few seconds.
    const acknowledged = page
      .getByTestId('toast')
      .filter({ hasText: '1 worker acknowledged' })
      .waitFor();
    await page.getByTestId('cordon').click();
    await acknowledged;
    await page.getByTestId('cordon-item').filter({ hasText: 'zone=us' }).waitFor();
    await us.and(page.locator('[data-health="draining"]')).waitFor();
    // Online, or late heartbeats on a busy machine: never cordoned.
    await expect(other.getAttribute('data-health')).resolves.not.toBe('draining');

    await page.getByTestId('cordon-item').getByRole('button', { name: 'Lift' }).click();
    await us.and(page.locator('[data-health="online"]')).waitFor();
    await expect(page.getByTestId('cordon-item').count()).resolves.toBe(0);
  });

  it('holds the queue on an emergency stop (keep running tasks) and drains it on resume', async () => {
    const model = 'm-console-stop';
    const w = await gated('cd-stop', model, 2);
    const page = await consoleOn('workers');
    await workerRow(page, 'cd-stop').waitFor();

    const running = await submit(master, 'running-before', model);
    await waitFor(() => w.provider.running.has('running-before'), { what: 'task running' });

    await page.getByTestId('emergency-stop').click();
    const dialog = page.getByTestId('emergency-dialog');
    await expect(dialog.getByTestId('choice-keep').isChecked()).resolves.toBe(true);
    await dialog.getByTestId('dialog-confirm').click();
    const banner = page.getByTestId('dispatch-banner');
    await banner.waitFor({ state: 'visible' });
    await expect(banner.textContent()).resolves.toContain('running tasks keep running');
    const state = (await api<FleetState>(master, '/api/fleet', { headers: asAdmin })).body;
    expect(state).toMatchObject({ dispatch: 'stopped', stopped: { running: 'keep' } });

    const held = [await submit(master, 'held-1', model), await submit(master, 'held-2', model)];
    // The running task finishes: its slot frees, yet nothing new is taken.
    w.provider.release('running-before');
    await taskIn(master, running, ['completed']);
    await page.goto(`${master.httpUrl}/console#overview`);
    await page.locator(LIVE).waitFor();
    await page.getByTestId('stat-queued').filter({ hasText: /^2$/ }).waitFor();
    for (const id of held) expect((await taskOf(master, id)).state).toBe('queued');
    expect(w.provider.running.size).toBe(0);

    await page.getByTestId('banner-resume').click();
    await banner.waitFor({ state: 'hidden' });
    await waitFor(() => w.provider.running.size === 2, { what: 'both held tasks running' });
    w.provider.releaseAll();
    for (const id of held) await taskIn(master, id, ['completed']);
    await page.getByTestId('stat-queued').filter({ hasText: /^0$/ }).waitFor();
  });
});
