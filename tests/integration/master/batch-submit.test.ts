/**
 * `POST /api/tasks/batch` on a real master (Redis store, embedded broker, an
 * echo worker): many tasks in one request, each answered; a retry with the
 * same Idempotency-Key names the same tasks; one bad task refuses the whole
 * batch; a task for an unknown model is refused alone; a batch counts as
 * many requests against the rate limit, and a refused one adds nothing.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { MAX_BATCH_TASKS } from '../../../proto/src/schemas/task.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { raw } from '../http/support.ts';
import { startTestMaster, startTestWorker } from './support.ts';

/** Requests a minute: enough for the polling below, fewer than the refused batch counts. */
const RPM = 400;

let redis: RedisServer;
let master: MasterHandle;
let echo: WorkerHandle;

const batch = (tasks: unknown[], headers: Record<string, string> = {}) =>
  raw(master.httpUrl, 'POST', '/api/tasks/batch', { body: { tasks }, headers });

type Entry = { id?: string; code?: string; error?: string };
const entries = (body: Record<string, unknown>) => body.tasks as Entry[];

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { RATE_LIMIT_RPM: String(RPM) },
  });
  echo = await startTestWorker(master, { WORKER_ID: 'batch-echo' });
  await waitFor(
    async () =>
      ((await raw(master.httpUrl, 'GET', '/api/workers')).body.workers as unknown[]).length === 1,
    { what: 'the echo worker online' },
  );
}, 60_000);

afterAll(async () => {
  await echo?.close();
  await master?.close();
  await redis?.stop();
});

describe('POST /api/tasks/batch', () => {
  it('queues every task of the batch, in order, and each one is answered', async () => {
    const prompts = Array.from({ length: 40 }, (_, i) => `batch prompt ${i}`);
    const answer = await batch(prompts.map((prompt) => ({ prompt, model: 'echo' })));
    expect(answer.status).toBe(202);
    const ids = entries(answer.body).map((e) => e.id as string);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
    // A request counts once at the door, the rest of the batch right after.
    expect(Number(answer.headers['x-ratelimit-remaining'])).toBeLessThanOrEqual(RPM - 40);
    // One task at a time (each poll counts against the limit too).
    const results: unknown[] = [];
    for (const id of ids) {
      const view = await waitFor(
        async () => {
          const body = (await raw(master.httpUrl, 'GET', `/api/tasks/${id}`)).body;
          return body.state === 'completed' && body;
        },
        { what: `task ${id} completed`, timeoutMs: 30_000 },
      );
      results.push((view as Record<string, unknown>).result);
    }
    expect(results).toEqual(prompts.map((p) => `echo: ${p}`));
  });

  it('names the same tasks again for a retry with the same Idempotency-Key', async () => {
    const tasks = [{ prompt: 'kept one', model: 'echo' }, { prompt: 'kept two' }];
    const headers = { 'idempotency-key': 'batch-retry-1' };
    const first = await batch(tasks, headers);
    const again = await batch(tasks, headers);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(entries(again.body)).toEqual(entries(first.body));
    // Another key (or none) makes new tasks.
    const other = await batch(tasks, { 'idempotency-key': 'batch-retry-2' });
    expect(entries(other.body).map((e) => e.id)).not.toContain(entries(first.body)[0]?.id);
  });

  it('refuses only the task whose model nobody serves', async () => {
    const answer = await batch([
      { prompt: 'fine', model: 'echo' },
      { prompt: 'no such model', model: 'nobody-serves-this' },
      { prompt: 'fine too', model: 'echo' },
    ]);
    expect(answer.status).toBe(202);
    const [a, b, c] = entries(answer.body);
    expect(a?.id).toBeDefined();
    expect(b).toMatchObject({ code: 'unknown_model' });
    expect(b?.error).toContain('nobody-serves-this');
    expect(c?.id).toBeDefined();
  });

  it('refuses the whole batch for one invalid task, naming it, and bounds its size', async () => {
    const bad = await batch([{ prompt: 'ok' }, { prompt: 'ok' }, { prompt: '' }]);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('bad_request');
    expect(bad.body.error).toContain('tasks.2.prompt');

    const many = await batch(Array.from({ length: MAX_BATCH_TASKS + 1 }, () => ({ prompt: 'x' })));
    expect(many.status).toBe(400);
    expect(many.body.error).toContain(String(MAX_BATCH_TASKS));

    expect((await batch([])).status).toBe(400);
  });

  it('counts a batch of N as N requests: over the limit, nothing is added', async () => {
    const store = new Redis(redis.url);
    try {
      const keysBefore = await store.dbsize();
      // More tasks than the limit allows in a minute: refused before anything is queued.
      const refused = await batch(
        Array.from({ length: MAX_BATCH_TASKS }, (_, i) => ({ prompt: `over ${i}` })),
      );
      expect(refused.status).toBe(429);
      expect(refused.body.code).toBe('rate_limited');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      // 500 tasks would be 500 job hashes at least; a few keys (the rate count) may change.
      expect((await store.dbsize()) - keysBefore).toBeLessThan(10);
    } finally {
      store.disconnect();
    }
  });
});
