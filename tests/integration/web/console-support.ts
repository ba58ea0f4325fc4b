/**
 * The operator console against a real master (Redis, the embedded broker)
 * in one Chromium: an admin and a user token, workers with a provider whose
 * answers the test releases, and the console page opened with a token.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { createGatedProvider, type GatedProvider } from '../../helpers/gated-provider.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, testLogger } from '../master/support.ts';

export const ADMIN = 'console-admin-token-0123456789';
export const USER = 'console-user-token-0123456789';
export const asAdmin = { authorization: `Bearer ${ADMIN}` };
export const LIVE = '[data-testid="connection-status"][data-state="connected"]';

/** A master with an admin (`ops`) and a user (`acme`) token; RATE_LIMIT_RPM=0 (support.ts). */
export function startConsoleMaster(queueUrl: string) {
  return startTestMaster({ queueUrl, env: { API_TOKENS: `ops:${ADMIN}:admin,acme:${USER}` } });
}

export interface GatedWorker {
  handle: WorkerHandle;
  provider: GatedProvider;
}

/** An in-process worker whose answers wait for `provider.release(prompt)`. */
export async function startGatedWorker(
  master: MasterHandle,
  id: string,
  env: Record<string, string>,
): Promise<GatedWorker> {
  const provider = createGatedProvider([env.MODELS ?? 'echo']);
  const config = loadWorkerConfig({
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    HEARTBEAT_MS: '500',
    WORKER_ID: id,
    WORKER_TOKEN: await master.issueWorkerCredential(id),
    ...env,
  });
  const handle = await startWorker(config, { logger: testLogger(id), provider });
  return { handle, provider };
}

/** A fresh context on `/console#<tab>`, the token already in the tab's session storage. */
export async function openConsole(
  browser: Browser,
  master: MasterHandle,
  opts: { token?: string; tab?: string; viewport?: { width: number; height: number } } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1400, height: 900 },
  });
  context.setDefaultTimeout(10_000);
  if (opts.token) {
    await context.addInitScript(
      (token) => sessionStorage.setItem('flota.token', token),
      opts.token,
    );
  }
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  await page.goto(`${master.httpUrl}/console#${opts.tab ?? 'overview'}`);
  return { context, page };
}

/** The row of a worker in the Workers tab. */
export const workerRow = (page: Page, id: string) =>
  page.locator(`[data-testid="worker-row"][data-worker-id="${id}"]`);

export async function submit(master: MasterHandle, prompt: string, model: string): Promise<string> {
  const posted = await api<{ id: string }>(master, '/api/tasks', {
    body: { prompt, model },
    headers: asAdmin,
  });
  if (posted.status !== 202) throw new Error(`submit answered ${posted.status}`);
  return posted.body.id;
}

export const taskOf = async (master: MasterHandle, id: string) =>
  (await api<TaskView>(master, `/api/tasks/${id}`, { headers: asAdmin })).body;

/** Resolves with the task once it is in one of `states`. */
export const taskIn = (master: MasterHandle, id: string, states: string[]) =>
  waitFor(
    async () => {
      const task = await taskOf(master, id);
      return states.includes(task.state) ? task : undefined;
    },
    { what: `task ${id} ${states.join('/')}` },
  );
