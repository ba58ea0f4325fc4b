/**
 * RATE_LIMIT_RPM against real masters: the X-RateLimit-* headers on every
 * /api answer, 429 with Retry-After past the limit, Socket.IO submissions
 * counted against the same budget, one tenant's flood not touching another,
 * and the counts kept in the store (Redis, and the embedded PostgreSQL) so a
 * restarted master goes on where the last one stopped.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { startTestMaster } from '../master/support.ts';
import { ask, type RawAnswer, raw, trySocket } from './support.ts';

const RPM = 5;
const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';

let redis: RedisServer;
const masters: MasterHandle[] = [];
/** A master on the test's Redis, or with `embedded` on its own embedded PostgreSQL. */
const start = async (env: Record<string, string>, store: 'redis' | 'embedded' = 'redis') => {
  const queueUrl = store === 'redis' ? redis.url : undefined;
  const master = await startTestMaster({ queueUrl, env: { RATE_LIMIT_RPM: String(RPM), ...env } });
  masters.push(master);
  return master;
};
const stop = async (master: MasterHandle) => {
  masters.splice(masters.indexOf(master), 1);
  await master.close();
};

/** Every /api answer names the limit, what is left and when the window restarts. */
function expectLimitHeaders(res: RawAnswer, remaining: number) {
  expect(res.headers['x-ratelimit-limit']).toBe(String(RPM));
  expect(res.headers['x-ratelimit-remaining']).toBe(String(remaining));
  const reset = Number(res.headers['x-ratelimit-reset']);
  expect(reset).toBeGreaterThan(0);
  expect(reset).toBeLessThanOrEqual(60);
}

function expectLimited(res: RawAnswer) {
  expect(res.status).toBe(429);
  expectLimitHeaders(res, 0);
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(res.body).toEqual({
    error: expect.stringMatching(/too many requests.*retry in \d+ s/),
    code: 'rate_limited',
    retryAfterS: retryAfter,
  });
}

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  for (const master of masters.splice(0)) await master.close();
});

afterAll(async () => {
  await redis?.stop();
});

describe('on Redis', () => {
  it('counts per address without tokens: headers on every answer, then 429 with Retry-After', async () => {
    const master = await start({});
    const answers: RawAnswer[] = [];
    // Every kind of answer counts and carries the headers: 200, 202, 400, 404.
    answers.push(await raw(master.httpUrl, 'GET', '/api/workers'));
    answers.push(await raw(master.httpUrl, 'POST', '/api/tasks', { body: { prompt: 'hi' } }));
    answers.push(await raw(master.httpUrl, 'POST', '/api/tasks', { body: { prompt: 7 } }));
    answers.push(await raw(master.httpUrl, 'GET', '/api/tasks/any.echo.nothing'));
    answers.push(await raw(master.httpUrl, 'GET', '/api/no-such-route'));
    expect(answers.map((a) => a.status)).toEqual([200, 202, 400, 404, 404]);
    answers.forEach((answer, i) => {
      expectLimitHeaders(answer, RPM - 1 - i);
    });
    expectLimited(await raw(master.httpUrl, 'GET', '/api/workers'));
    // Outside /api nothing is limited.
    expect((await raw(master.httpUrl, 'GET', '/healthz')).status).toBe(200);
  });

  it('holds across a master restart on the same store', async () => {
    const env = { QUEUE_NAMESPACE: randomName('rl').toLowerCase() };
    const first = await start(env);
    for (let i = 0; i < RPM; i++) {
      expect((await raw(first.httpUrl, 'GET', '/api/workers')).status).toBe(200);
    }
    await stop(first);
    const second = await start(env);
    expectLimited(await raw(second.httpUrl, 'GET', '/api/workers'));
    // Another namespace on the same Redis is another installation, with its own budget.
    const other = await start({});
    expect((await raw(other.httpUrl, 'GET', '/api/workers')).status).toBe(200);
  });

  it('counts per tenant with tokens, Socket.IO submissions included', async () => {
    const master = await start({ API_TOKENS: `alice:${ALICE},bob:${BOB}` });
    const { socket, refused } = await trySocket(master.httpUrl, { token: ALICE });
    expect(refused).toBeUndefined();
    if (!socket) return;
    try {
      expect(await ask(socket, 'session:hello', { sessionId: 'alice-session-1' })).toMatchObject({
        ok: true,
      });
      const replies = [];
      for (let i = 0; i < 3; i++) {
        replies.push(await ask(socket, 'task:submit', { prompt: `over the socket ${i}` }));
      }
      expect(replies.every((r) => r.ok === true)).toBe(true);
      // REST takes the rest of alice's budget ...
      const rest = await raw(master.httpUrl, 'GET', '/api/workers', { token: ALICE });
      expectLimitHeaders(rest, 1);
      expect((await raw(master.httpUrl, 'GET', '/api/workers', { token: ALICE })).status).toBe(200);
      // ... so both ways in are closed to her now.
      expectLimited(await raw(master.httpUrl, 'GET', '/api/workers', { token: ALICE }));
      const refusedAck = await ask(socket, 'task:submit', { prompt: 'one too many' });
      expect(refusedAck).toEqual({
        ok: false,
        error: expect.stringMatching(/too many requests/),
        code: 'rate_limited',
        retryAfterS: expect.any(Number),
      });
      expect(refusedAck.retryAfterS).toBeGreaterThan(0);
      expect(await ask(socket, 'task:cancel', { taskId: 'any.echo.x' })).toMatchObject({
        ok: false,
        code: 'rate_limited',
      });
      // Bob is not touched by alice's flood.
      const bob = await raw(master.httpUrl, 'GET', '/api/workers', { token: BOB });
      expect(bob.status).toBe(200);
      expectLimitHeaders(bob, RPM - 1);
    } finally {
      socket.close();
    }
  });

  it('counts refused tokens by address, with the headers on the 401', async () => {
    const master = await start({ API_TOKENS: `alice:${ALICE}` });
    const res = await raw(master.httpUrl, 'GET', '/api/workers', {
      token: 'wrong-token-0123456789',
    });
    expect(res.status).toBe(401);
    expectLimitHeaders(res, RPM - 1);
  });

  it('is off with RATE_LIMIT_RPM=0: no headers, no 429', async () => {
    const master = await start({ RATE_LIMIT_RPM: '0' });
    for (let i = 0; i < RPM + 3; i++) {
      const res = await raw(master.httpUrl, 'GET', '/api/workers');
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });
});

describe('on the embedded PostgreSQL', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'flota-rl-pg-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('limits, and holds across a master restart', async () => {
    const env = { FLOTA_DATA_DIR: dataDir, QUEUE_NAMESPACE: 'rate_pg' };
    const first = await start(env, 'embedded');
    for (let i = 0; i < RPM; i++) {
      const res = await raw(first.httpUrl, 'GET', '/api/workers');
      expect(res.status).toBe(200);
      expectLimitHeaders(res, RPM - 1 - i);
    }
    expectLimited(await raw(first.httpUrl, 'GET', '/api/workers'));
    await stop(first);
    const second = await start(env, 'embedded');
    expectLimited(await raw(second.httpUrl, 'GET', '/api/workers'));
  });
});
