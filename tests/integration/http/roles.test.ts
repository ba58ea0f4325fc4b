/**
 * Roles against a real master (Redis store, no worker: tasks stay queued):
 * a user token sees and changes only its own tenant's tasks, another tenant's
 * read as absent; an admin token sees every tenant's and alone may manage
 * worker credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { startTestMaster } from '../master/support.ts';
import { raw, STAYS_QUEUED } from './support.ts';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const OPS = 'ops-token-0123456789abcdefghi';

let redis: RedisServer;
let master: MasterHandle;
const call = (method: string, path: string, token: string, body?: unknown) =>
  raw(master.httpUrl, method, path, { token, body });

async function submitAs(token: string, prompt: string): Promise<string> {
  const res = await call('POST', '/api/tasks', token, { prompt, ...STAYS_QUEUED });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return String(res.body.id);
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `alice:${ALICE},bob:${BOB},ops:${OPS}:admin`, RATE_LIMIT_RPM: '0' },
  });
});

afterAll(async () => {
  await master?.close();
  await redis?.stop();
});

describe('tasks by role', () => {
  it("a user reads, re-prioritises and cancels its own tenant's task", async () => {
    const id = await submitAs(ALICE, 'alice reads her own');
    expect((await call('GET', `/api/tasks/${id}`, ALICE)).body).toMatchObject({ state: 'queued' });
    const moved = await call('PATCH', `/api/tasks/${id}`, ALICE, { priority: 7 });
    expect(moved).toMatchObject({ status: 200, body: { priority: 7 } });
    const cancelled = await call('DELETE', `/api/tasks/${id}`, ALICE);
    expect(cancelled).toMatchObject({ status: 200, body: { state: 'cancelled' } });
  });

  it("another tenant's task reads as absent for GET, PATCH and DELETE, and is left alone", async () => {
    const id = await submitAs(ALICE, 'not for bob');
    const missing = { status: 404, body: { code: 'not_found', error: `no task ${id}` } };
    expect(await call('GET', `/api/tasks/${id}`, BOB)).toMatchObject(missing);
    expect(await call('PATCH', `/api/tasks/${id}`, BOB, { priority: 9 })).toMatchObject(missing);
    expect(await call('DELETE', `/api/tasks/${id}`, BOB)).toMatchObject(missing);
    // The same answer as for a task that does not exist at all.
    const absent = await call('GET', '/api/tasks/any.echo.does-not-exist', BOB);
    expect(absent.status).toBe(404);
    expect((await call('GET', `/api/tasks/${id}`, ALICE)).body).toMatchObject({
      state: 'queued',
      priority: 0,
    });
  });

  it("an admin reads, re-prioritises and cancels any tenant's task", async () => {
    const id = await submitAs(BOB, 'bob asks, ops looks');
    expect(await call('GET', `/api/tasks/${id}`, OPS)).toMatchObject({
      status: 200,
      body: { id, state: 'queued' },
    });
    expect(await call('PATCH', `/api/tasks/${id}`, OPS, { priority: 3 })).toMatchObject({
      status: 200,
      body: { priority: 3 },
    });
    expect(await call('DELETE', `/api/tasks/${id}`, OPS)).toMatchObject({
      status: 200,
      body: { state: 'cancelled' },
    });
    expect((await call('GET', `/api/tasks/${id}`, BOB)).body).toMatchObject({ state: 'cancelled' });
  });
});

describe('fleet control', () => {
  it('is refused to a user token with 403 forbidden, and issues nothing', async () => {
    for (const [path, body] of [
      ['/api/workers/w-1/credential', undefined],
      ['/api/workers/join-tokens', { prefix: 'cpu-' }],
      ['/api/workers/w-1/revoke', undefined],
    ] as const) {
      const res = await call('POST', path, ALICE, body);
      expect(res.status, path).toBe(403);
      expect(res.body).toEqual({ error: expect.stringMatching(/admin/), code: 'forbidden' });
    }
  });

  it('needs a token at all', async () => {
    const res = await raw(master.httpUrl, 'POST', '/api/workers/w-1/credential');
    expect(res).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
  });

  it('issues an admin a worker credential, a join token, and revokes', async () => {
    const credential = await call('POST', '/api/workers/w-7/credential', OPS);
    expect(credential.status).toBe(201);
    expect(credential.body).toEqual({
      workerId: 'w-7',
      credential: expect.stringMatching(/^fwt1\./),
    });
    expect(credential.headers['cache-control']).toBe('no-store');

    const join = await call('POST', '/api/workers/join-tokens', OPS, { prefix: 'gpu-node7-' });
    expect(join.status).toBe(201);
    expect(join.body).toEqual({
      prefix: 'gpu-node7-',
      joinToken: expect.stringMatching(/^fjt1\./),
    });

    const revoked = await call('POST', '/api/workers/w-7/revoke', OPS);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ workerId: 'w-7', revokedAt: expect.any(Number) });
  });

  it('validates what an admin sends', async () => {
    const badId = await call(
      'POST',
      `/api/workers/${encodeURIComponent('bad id!')}/credential`,
      OPS,
    );
    expect(badId).toMatchObject({ status: 400, body: { code: 'bad_request' } });
    expect((await call('POST', '/api/workers/join-tokens', OPS, {})).status).toBe(400);
    const badPrefix = await call('POST', '/api/workers/join-tokens', OPS, { prefix: 'a b' });
    expect(badPrefix).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/prefix/) },
    });
    const extra = await call('POST', '/api/workers/join-tokens', OPS, { prefix: '', admin: 1 });
    expect(extra.status).toBe(400);
    expect((await call('POST', '/api/workers/w-1/revoke', OPS, { force: true })).status).toBe(400);
  });
});
