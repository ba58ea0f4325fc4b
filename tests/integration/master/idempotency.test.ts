/**
 * A retried submission is the same task, even when it names no model and the
 * models online changed between the tries (the task id names its queue).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

let redis: RedisServer;
let master: Awaited<ReturnType<typeof startTestMaster>>;
const workers: WorkerHandle[] = [];

const models = async () => (await api<{ models: string[] }>(master, '/api/workers')).body.models;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url });
  workers.push(await startTestWorker(master, { WORKER_ID: 'w-echo' }));
  await waitFor(async () => ((await models()).includes('echo') ? true : undefined), {
    what: 'echo served',
  });
});

afterAll(async () => {
  for (const w of workers) await w.close();
  await master?.close();
  await redis?.stop();
});

it('keeps a model-less keyed submission one task when the served models change', async () => {
  const post = () =>
    api<{ id: string }>(master, '/api/tasks', {
      body: { prompt: 'which model?' },
      headers: { 'idempotency-key': 'retry-me-1' },
    });
  const first = await post();
  expect(first.body.id).toMatch(/^any\.echo\./);
  // A worker with a model that sorts first comes online: a fresh choice would now differ.
  workers.push(await startTestWorker(master, { WORKER_ID: 'w-a', MODELS: 'aaa-model' }));
  await waitFor(async () => ((await models())[0] === 'aaa-model' ? true : undefined), {
    what: 'aaa-model served',
  });
  const fresh = await api<{ id: string }>(master, '/api/tasks', { body: { prompt: 'fresh' } });
  expect(fresh.body.id).toMatch(/^any\.aaa-model\./);
  const retry = await post();
  expect(retry.status).toBe(202);
  expect(retry.body.id).toBe(first.body.id);
});
