/**
 * API_TOKENS with a real master, Redis and echo worker: /api and Socket.IO
 * need a token, health and metrics stay open, and tenants never see each
 * other's cached answers, tasks, idempotency keys or chat sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import {
  type CountingWorker,
  runTask,
  startCountingWorker,
  TokenSession,
  waitOnline,
} from './cache-support.ts';
import { api, startTestMaster } from './support.ts';

const ACME = 'acme-token-0123456789';
const GLOBEX = 'globex-token-0123456789';
const asAcme = { authorization: `Bearer ${ACME}` };
const asGlobex = { authorization: `Bearer ${GLOBEX}` };

let redis: RedisServer;
let master: MasterHandle;
let worker: CountingWorker;
const sessions: TokenSession[] = [];
const session = (token: string | undefined) => {
  const s = new TokenSession(master.httpUrl, token);
  sessions.push(s);
  return s;
};

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `acme:${ACME},globex:${GLOBEX}`, CACHE_TTL_S: '300' },
  });
  worker = await startCountingWorker(master, 'tenant-w1');
  await waitOnline(master, 'tenant-w1', asAcme);
});

afterAll(async () => {
  for (const s of sessions) s.close();
  await worker?.handle.close();
  await master?.close();
  await redis?.stop();
});

describe('REST', () => {
  it('answers 401 with a challenge without a token, with a wrong one, or a malformed header', async () => {
    const none = await fetch(`${master.httpUrl}/api/workers`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="flota"');
    expect(await none.json()).toEqual({
      error: 'this API needs a token: send Authorization: Bearer <token>',
      code: 'unauthorized',
    });

    const wrong = await api<{ code: string }>(master, '/api/tasks', {
      body: { prompt: 'x' },
      headers: { authorization: 'Bearer not-a-known-token-at-all' },
    });
    expect(wrong).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    const wrongHeaders = await fetch(`${master.httpUrl}/api/metrics`, {
      headers: { authorization: 'Bearer not-a-known-token-at-all' },
    });
    expect(wrongHeaders.headers.get('www-authenticate')).toBe(
      'Bearer realm="flota", error="invalid_token"',
    );

    const basic = await api(master, '/api/workers', {
      headers: { authorization: `Basic ${ACME}` },
    });
    expect(basic.status).toBe(401);
    expect((await api(master, '/api/workers', { headers: asAcme })).status).toBe(200);
  });

  it('keeps health, readiness, metrics and the web UI open', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/']) {
      expect((await fetch(`${master.httpUrl}${path}`)).status, path).toBe(200);
    }
  });

  it('never answers one tenant from another tenant’s cache', async () => {
    const prompt = 'what is our revenue?';
    const first = await runTask(master, { prompt }, asAcme);
    const again = await runTask(master, { prompt }, asAcme);
    const other = await runTask(master, { prompt }, asGlobex);
    expect(first.cache).toBeUndefined();
    expect(again.cache?.hit).toBe(true);
    expect(other.cache).toBeUndefined();
    expect(other.workerId).toBe('tenant-w1');
    expect(worker.runs.filter((p) => p === prompt)).toHaveLength(2);
    const otherAgain = await runTask(master, { prompt }, asGlobex);
    expect(otherAgain.cache?.hit).toBe(true);
  });

  it('hides a tenant’s tasks from the others', async () => {
    const task = await runTask(master, { prompt: 'private' }, asAcme);
    const read = await api(master, `/api/tasks/${task.id}`, { headers: asGlobex });
    expect(read.status).toBe(404);
    const cancel = await api(master, `/api/tasks/${task.id}`, {
      method: 'DELETE',
      headers: asGlobex,
    });
    expect(cancel.status).toBe(404);
    expect((await api(master, `/api/tasks/${task.id}`, { headers: asAcme })).status).toBe(200);
  });

  it('gives two tenants using the same Idempotency-Key two tasks', async () => {
    const post = (headers: Record<string, string>) =>
      api<{ id: string }>(master, '/api/tasks', {
        body: { prompt: 'keyed', cache: false },
        headers: { ...headers, 'idempotency-key': 'same-key-1' },
      });
    const a = await post(asAcme);
    const b = await post(asGlobex);
    const aAgain = await post(asAcme);
    expect(a.body.id).not.toBe(b.body.id);
    expect(aAgain.body.id).toBe(a.body.id);
  });
});

describe('Socket.IO', () => {
  it('refuses a connection without a token or with a wrong one, readably', async () => {
    await expect(session(undefined).connected()).rejects.toThrow(
      'an API token is required: connect with auth: { token }',
    );
    await expect(session('not-a-known-token-at-all').connected()).rejects.toThrow(
      'the API token is not valid',
    );
  });

  it('accepts a token, and keeps two tenants apart even in sessions with the same id', async () => {
    const acme = session(ACME);
    const globex = session(GLOBEX);
    await Promise.all([acme.connected(), globex.connected()]);
    expect(await acme.hello('shared-session')).toMatchObject({
      ok: true,
      sessionId: 'shared-session',
    });
    expect(await globex.hello('shared-session')).toMatchObject({ ok: true });

    const acmeTask = await acme.submit({ prompt: 'acme in the chat', cache: false });
    expect((await acme.finished(acmeTask)).payload).toMatchObject({
      state: 'completed',
      result: 'echo: acme in the chat',
    });
    const globexTask = await globex.submit({ prompt: 'globex in the chat', cache: false });
    await globex.finished(globexTask);
    // Both sessions heard only their own tasks (globex's ended after acme's events went out).
    expect(new Set(acme.events.map((e) => e.payload.taskId ?? e.payload.id))).toEqual(
      new Set([acmeTask]),
    );
    expect(new Set(globex.events.map((e) => e.payload.taskId ?? e.payload.id))).toEqual(
      new Set([globexTask]),
    );
    // The session's tasks read back over REST only for their own tenant.
    expect((await api(master, `/api/tasks/${acmeTask}`, { headers: asAcme })).status).toBe(200);
    expect((await api(master, `/api/tasks/${acmeTask}`, { headers: asGlobex })).status).toBe(404);
  });
});
