/**
 * The operator console's live link, in Chromium, against a real master: a
 * worker process killed with SIGKILL shows red within 2 s of the kill, and
 * the page refuses without an admin token (a user's token is told so
 * plainly), both refusals in the audit trail.
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { io } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  CONSOLE_EVENTS,
  CONSOLE_NAMESPACE,
  type ConsoleState,
} from '../../../proto/src/console-events.ts';
import type { AuditPage } from '../../../proto/src/schemas/audit.ts';
import {
  alertsResponseSchema,
  type SeriesPoint,
  seriesPointSchema,
} from '../../../proto/src/schemas/console.ts';
import { fleetStateSchema } from '../../../proto/src/schemas/fleet.ts';
import { workerViewSchema } from '../../../proto/src/schemas/worker.ts';
import { dumpOutput, type FlotaProcess, spawnFlota } from '../../e2e/support/flota-process.ts';
import { launchBrowser } from '../../helpers/browser.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api } from '../master/support.ts';
import {
  ADMIN,
  asAdmin,
  LIVE,
  openConsole,
  startConsoleMaster,
  USER,
  workerRow,
} from './console-support.ts';

const REFUSED = '[data-testid="connection-status"][data-state="unauthorized"]';

let redis: RedisServer;
let master: MasterHandle;
let browser: Browser;
let context: BrowserContext | undefined;
let worker: FlotaProcess | undefined;

beforeAll(async () => {
  redis = await startRedis();
  master = await startConsoleMaster(redis.url);
  browser = await launchBrowser();
});

afterEach(async (test) => {
  if (test.task.result?.state === 'fail') dumpOutput([worker]);
  await context?.close();
  context = undefined;
});

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await browser?.close();
  await master?.close();
  await redis?.stop();
});

describe('console live link', () => {
  it('shows a worker killed with SIGKILL as offline (red) within 2 s of the kill', async () => {
    const id = 'cl-doomed';
    worker = spawnFlota({
      name: `flota worker ${id}`,
      args: ['worker'],
      env: {
        WORKER_ID: id,
        WORKER_TOKEN: await master.issueWorkerCredential(id),
        MQTT_URL: master.mqttUrl,
        MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
        PROVIDER: 'echo',
        HEARTBEAT_MS: '1000',
        LOG_LEVEL: 'warn',
      },
    });
    const opened = await openConsole(browser, master, { token: ADMIN, tab: 'workers' });
    context = opened.context;
    const { page } = opened;
    await page.locator(LIVE).waitFor();
    const row = workerRow(page, id);
    // A process starts in a few seconds (TypeScript through tsx).
    await row.and(page.locator('[data-health="online"]')).waitFor({ timeout: 30_000 });

    const killedAt = Date.now();
    worker.signalGroup('SIGKILL');
    await row.and(page.locator('[data-health="offline"]')).waitFor({ timeout: 2_000 });
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThan(2_000);
    await expect(row.getByTestId('worker-health').textContent()).resolves.toBe('Offline');
    const dot = await row
      .locator('.health-dot')
      .evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(dot).toBe('rgb(220, 38, 38)');
  });

  it('sends a snapshot on connect, then a point a second; a bad handshake is refused', async () => {
    const url = `${master.httpUrl}${CONSOLE_NAMESPACE}`;
    const socket = io(url, { auth: { token: ADMIN }, transports: ['websocket'] });
    try {
      const state = await new Promise<ConsoleState>((resolve) =>
        socket.once(CONSOLE_EVENTS.state, resolve),
      );
      for (const point of state.points) seriesPointSchema.parse(point);
      fleetStateSchema.parse(state.fleet);
      alertsResponseSchema.parse(state.alerts);
      for (const w of state.workers.workers) workerViewSchema.parse(w);
      expect(state.workers.fleet).toMatchObject({ online: expect.any(Number) });
      const points: SeriesPoint[] = [];
      socket.on(CONSOLE_EVENTS.point, (p: SeriesPoint) => points.push(p));
      await waitFor(() => points.length >= 2, { what: 'two live points' });
      const [a, b] = points as [SeriesPoint, SeriesPoint];
      expect(b.at - a.at).toBe(1_000);
      seriesPointSchema.parse(b);
    } finally {
      socket.close();
    }

    const bad = io(url, { auth: { token: ADMIN, since: 'yesterday' }, transports: ['websocket'] });
    const refusal = await new Promise<Error & { data?: { code?: string } }>((resolve) =>
      bad.once('connect_error', resolve),
    );
    bad.close();
    expect(refusal.message).toMatch(/^console handshake: since/);
    expect(refusal.data?.code).toBe('bad_request');
  });

  it('draws a longer range read from the master, and says what it lacks without Prometheus', async () => {
    const opened = await openConsole(browser, master, { token: ADMIN, tab: 'overview' });
    context = opened.context;
    const { page } = opened;
    await page.locator(LIVE).waitFor();
    await page.getByTestId('chart-throughput').locator('canvas').waitFor();
    const asked = page.waitForRequest((req) => req.url().includes('/api/series?from='));
    await page.getByTestId('series-range').selectOption('6h');
    await asked;
    // No PROMETHEUS_URL here: the master's own hour, and the note says why that is all.
    await page.getByTestId('series-note').filter({ hasText: 'PROMETHEUS_URL' }).waitFor();
    await page.getByTestId('chart-throughput').locator('canvas').waitFor();
    await page.getByTestId('series-range').selectOption('live');
    await page.getByTestId('series-note').filter({ hasText: /^$/ }).waitFor({ state: 'attached' });
  });

  it('refuses without a token and with a user token, says why, and lets an admin in', async () => {
    const since = Date.now();
    const opened = await openConsole(browser, master, { tab: 'workers' });
    context = opened.context;
    const { page } = opened;
    const status = page.getByTestId('connection-status');
    const problem = page.getByTestId('console-problem');
    await page.locator(REFUSED).waitFor();
    await expect(problem.textContent()).resolves.toContain('needs an admin token');
    await expect(page.getByTestId('worker-row').count()).resolves.toBe(0);

    const token = page.getByTestId('token-input');
    await token.fill(USER);
    await token.press('Enter');
    await page.locator(REFUSED).filter({ hasText: 'Not an admin token' }).waitFor();
    await expect(problem.textContent()).resolves.toContain('belongs to a user, not an admin');
    await expect(status.getAttribute('title')).resolves.toContain('admin token');
    await expect(token.getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.getByTestId('worker-row').count()).resolves.toBe(0);

    await token.fill(ADMIN);
    await token.press('Enter');
    await page.locator(LIVE).waitFor();
    await expect(problem.isHidden()).resolves.toBe(true);

    const { body } = await api<AuditPage>(master, `/api/audit?action=auth.refused&since=${since}`, {
      headers: asAdmin,
    });
    const details = body.records.map((r) => `${r.target} ${r.detail}`);
    expect(details).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/Socket\.IO connection 401/),
        expect.stringMatching(
          /^console Socket\.IO connection 403 the console needs an admin token/,
        ),
      ]),
    );
    expect(JSON.stringify(body)).not.toContain(USER);
  });
});
