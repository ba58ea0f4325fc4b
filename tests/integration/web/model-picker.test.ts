/**
 * The chat UI's model picker against a real master: each model shows where it
 * runs and, for a model workers run locally, whether one holds it loaded,
 * updated live as the workers' heartbeats say it was loaded or dropped.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { launchBrowser } from '../../helpers/browser.ts';
import { llamaStatus, type RawWorker, startRawWorker } from '../../helpers/raw-worker.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { startTestMaster, startTestWorker } from '../master/support.ts';
import { CONNECTED } from './ui-harness.ts';

const TINY_LOADED = { name: 'tiny', memMb: 700, loadMs: 1_500, lastUsedAt: 1 };

let redis: RedisServer;
let master: MasterHandle;
let echo: WorkerHandle;
let llama: RawWorker;
let gpuLlama: RawWorker;
let browser: Browser;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url });
  echo = await startTestWorker(master, { WORKER_ID: 'p-echo' });
  llama = await startRawWorker('p-llama', {
    mqttUrl: master.mqttUrl,
    credential: await master.issueWorkerCredential('p-llama'),
    status: llamaStatus(['tiny']),
  });
  gpuLlama = await startRawWorker('p-llama-gpu', {
    mqttUrl: master.mqttUrl,
    credential: await master.issueWorkerCredential('p-llama-gpu'),
    status: llamaStatus(['big'], { kind: 'gpu' }),
  });
  await llama.beat([]);
  await gpuLlama.beat([{ ...TINY_LOADED, name: 'big' }]);
  browser = await launchBrowser();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await llama?.close();
  await gpuLlama?.close();
  await echo?.close();
  await master?.close();
  await redis?.stop();
});

const option = (page: Page, text: string) =>
  page.getByTestId('model-select').locator('option', { hasText: new RegExp(`^${text}$`) });

describe('model picker', () => {
  it('shows CPU/GPU and the loaded state of each model, live', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    try {
      await page.goto(master.httpUrl);
      await page.locator(CONNECTED).waitFor();
      await option(page, 'tiny · CPU · not loaded').waitFor({ state: 'attached' });
      await option(page, 'big · GPU · loaded').waitFor({ state: 'attached' });
      await option(page, 'echo · CPU').waitFor({ state: 'attached' });

      await llama.beat([TINY_LOADED]);
      await option(page, 'tiny · CPU · loaded').waitFor({ state: 'attached' });

      await llama.beat([]);
      await option(page, 'tiny · CPU · not loaded').waitFor({ state: 'attached' });
      await expect(
        page.getByTestId('model-select').locator('option').allTextContents(),
      ).resolves.toEqual(expect.arrayContaining(['echo · CPU', 'big · GPU · loaded']));
    } finally {
      await context.close();
    }
  });
});
