/**
 * What a submission may ask for, against a real master and worker: at most
 * MAX_QUEUED_PER_TENANT unfinished tasks per tenant (429 queue_full), only
 * models the fleet knows (400 with the list), and text every store keeps
 * (a NUL, a lone surrogate or a reserved label key is a 400, never a 503),
 * on REST and on Socket.IO alike.
 */
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../master/support.ts';
import { ask, raw, STAYS_QUEUED, trySocket } from './support.ts';

const CAP = 3;
const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';

let redis: RedisServer;
let master: MasterHandle;
let worker: WorkerHandle;
let socket: Socket;

const post = (body: unknown, token = BOB) =>
  raw(master.httpUrl, 'POST', '/api/tasks', { body, token });

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: {
      API_TOKENS: `alice:${ALICE},bob:${BOB}`,
      MAX_QUEUED_PER_TENANT: String(CAP),
      RATE_LIMIT_RPM: '0',
    },
  });
  worker = await startTestWorker(master, { WORKER_ID: 'limits-w1', ECHO_DELAY_MS: '0' });
  await waitFor(
    async () =>
      (
        await api<{ models: string[] }>(master, '/api/workers', {
          headers: { authorization: `Bearer ${BOB}` },
        })
      ).body.models.includes('echo'),
    { what: 'the echo worker online' },
  );
  const attempt = await trySocket(master.httpUrl, { token: BOB });
  if (!attempt.socket) throw new Error(`socket refused: ${attempt.refused}`);
  socket = attempt.socket;
  expect(await ask(socket, 'session:hello', { sessionId: 'limits-session' })).toMatchObject({
    ok: true,
  });
});

afterAll(async () => {
  socket?.close();
  await worker?.close();
  await master?.close();
  await redis?.stop();
});

describe('MAX_QUEUED_PER_TENANT', () => {
  it('refuses a tenant past its cap with 429 queue_full, until one of its tasks ends', async () => {
    const ids: string[] = [];
    for (let i = 0; i < CAP; i++) {
      const res = await raw(master.httpUrl, 'POST', '/api/tasks', {
        token: ALICE,
        body: { prompt: `waits ${i}`, ...STAYS_QUEUED },
      });
      expect(res.status).toBe(202);
      ids.push(String(res.body.id));
    }
    const full = await raw(master.httpUrl, 'POST', '/api/tasks', {
      token: ALICE,
      body: { prompt: 'one too many', ...STAYS_QUEUED },
    });
    expect(full.status).toBe(429);
    expect(full.body).toEqual({
      error: expect.stringMatching(/too many unfinished tasks: 3 .*MAX_QUEUED_PER_TENANT/),
      code: 'queue_full',
    });
    // Another tenant is not affected, on REST or Socket.IO.
    expect((await post({ prompt: 'bob is fine' })).status).toBe(202);
    expect(await ask(socket, 'task:submit', { prompt: 'bob over the socket' })).toMatchObject({
      ok: true,
    });
    // One of alice's ends: she may submit one more.
    const cancelled = await raw(master.httpUrl, 'DELETE', `/api/tasks/${ids[0]}`, { token: ALICE });
    expect(cancelled.body).toMatchObject({ state: 'cancelled' });
    await waitFor(
      async () =>
        (
          await raw(master.httpUrl, 'POST', '/api/tasks', {
            token: ALICE,
            body: { prompt: 'room again', ...STAYS_QUEUED },
          })
        ).status === 202,
      { what: 'room for alice after a cancel' },
    );
  });

  it('answers the cap on Socket.IO in the ack, with its code', async () => {
    const alice = await trySocket(master.httpUrl, { token: ALICE });
    if (!alice.socket) throw new Error(`socket refused: ${alice.refused}`);
    try {
      await ask(alice.socket, 'session:hello', { sessionId: 'alice-limits' });
      const reply = await ask(alice.socket, 'task:submit', { prompt: 'full', ...STAYS_QUEUED });
      expect(reply).toEqual({
        ok: false,
        error: expect.stringMatching(/too many unfinished tasks/),
        code: 'queue_full',
      });
    } finally {
      alice.socket.close();
    }
  });
});

describe('models', () => {
  it('refuses a model no worker serves or has served with 400 and the known models', async () => {
    const res = await post({ prompt: 'hi', model: 'no-such-model' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'no worker serves model "no-such-model"; known models: echo',
      code: 'unknown_model',
      models: ['echo'],
    });
    const ack = await ask(socket, 'task:submit', { prompt: 'hi', model: 'no-such-model' });
    expect(ack).toMatchObject({
      ok: false,
      code: 'unknown_model',
      error: expect.stringMatching(/echo/),
    });
  });

  it('takes a known model, and no model at all (the default)', async () => {
    expect((await post({ prompt: 'named', model: 'echo' })).status).toBe(202);
    expect((await post({ prompt: 'unnamed' })).status).toBe(202);
  });
});

describe('input hygiene', () => {
  const bodies: Array<[string, string, RegExp]> = [
    ['a NUL in the prompt', '{"prompt":"a\\u0000b"}', /prompt.*NUL/],
    ['a lone surrogate in the prompt', '{"prompt":"a\\ud800b"}', /prompt.*surrogate/],
    [
      'a NUL in a history message',
      '{"prompt":"hi","messages":[{"role":"user","content":"x\\u0000"}]}',
      /messages\.0\.content/,
    ],
    ['a lone surrogate in the model', '{"prompt":"hi","model":"echo\\udc00"}', /model/],
    [
      'a NUL in a label',
      '{"prompt":"hi","requires":{"labels":{"zone\\u0000":"eu"}}}',
      /requires\.labels/,
    ],
    [
      'the label key __proto__',
      '{"prompt":"hi","requires":{"labels":{"__proto__":"x"}}}',
      /"__proto__" is reserved/,
    ],
    [
      'the label key constructor',
      '{"prompt":"hi","requires":{"labels":{"constructor":"x"}}}',
      /"constructor" is reserved/,
    ],
  ];
  for (const [what, body, reason] of bodies) {
    it(`answers ${what} with 400 and the reason, on REST and Socket.IO`, async () => {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: expect.stringMatching(reason), code: 'bad_request' });
      const ack = await ask(socket, 'task:submit', JSON.parse(body));
      expect(ack).toMatchObject({ ok: false, error: expect.stringMatching(reason) });
    });
  }

  it('still runs an ordinary task with unicode end to end', async () => {
    const res = await post({ prompt: 'ünïcödé 😀 漢字' });
    expect(res.status).toBe(202);
    const view = await waitFor(
      async () => {
        const task = await raw(master.httpUrl, 'GET', `/api/tasks/${res.body.id}`, { token: BOB });
        return task.body.state === 'completed' ? task.body : undefined;
      },
      { what: 'the unicode task completed' },
    );
    expect(view.result).toBe('echo: ünïcödé 😀 漢字');
  });
});
