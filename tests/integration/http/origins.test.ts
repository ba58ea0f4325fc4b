/**
 * Browser origins against a real master: pages of the master's own origin
 * and of CORS_ORIGINS may call the REST API and open Socket.IO; any other
 * page gets 403 without CORS headers, and its socket is refused. Requests
 * without Origin (curl, the CLI) go on to authentication. Without tokens, a
 * Host header that is not a loopback name is refused (DNS rebinding).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { startTestMaster } from '../master/support.ts';
import { raw, trySocket } from './support.ts';

const LISTED = 'https://app.example.com';
const FOREIGN = 'https://evil.example';
const TOKEN = 'alice-token-0123456789abcdef';

let redis: RedisServer;
let open: MasterHandle;
let guarded: MasterHandle;

beforeAll(async () => {
  redis = await startRedis();
  const env = { CORS_ORIGINS: `${LISTED}, http://localhost:9`, RATE_LIMIT_RPM: '0' };
  open = await startTestMaster({ queueUrl: redis.url, env });
  guarded = await startTestMaster({
    queueUrl: redis.url,
    env: { ...env, API_TOKENS: `alice:${TOKEN}` },
  });
});

afterAll(async () => {
  await open?.close();
  await guarded?.close();
  await redis?.stop();
});

describe('REST', () => {
  it('refuses a foreign page with 403 and no CORS headers, before any token is asked for', async () => {
    for (const master of [open, guarded]) {
      for (const method of ['GET', 'POST', 'OPTIONS']) {
        const res = await raw(master.httpUrl, method, '/api/tasks', {
          headers: { origin: FOREIGN, 'access-control-request-method': 'POST' },
          body: method === 'POST' ? { prompt: 'from a foreign page' } : undefined,
          token: TOKEN,
        });
        expect(res.status, method).toBe(403);
        expect(res.body).toMatchObject({
          code: 'origin_refused',
          error: expect.stringMatching(/CORS_ORIGINS/),
        });
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
      }
    }
    const literalNull = await raw(open.httpUrl, 'GET', '/api/workers', {
      headers: { origin: 'null' },
    });
    expect(literalNull.status).toBe(403);
  });

  it("accepts the master's own origin, and requests without Origin", async () => {
    const own = await raw(open.httpUrl, 'GET', '/api/workers', {
      headers: { origin: open.httpUrl },
    });
    expect(own.status).toBe(200);
    expect(own.headers['access-control-allow-origin']).toBeUndefined();
    expect((await raw(open.httpUrl, 'GET', '/api/workers')).status).toBe(200);
    // Without Origin a request still needs its token where tokens are on.
    expect((await raw(guarded.httpUrl, 'GET', '/api/workers')).status).toBe(401);
    expect((await raw(guarded.httpUrl, 'GET', '/api/workers', { token: TOKEN })).status).toBe(200);
  });

  it('gives a listed origin CORS headers, preflight included, and still asks for its token', async () => {
    const preflight = await raw(guarded.httpUrl, 'OPTIONS', '/api/tasks', {
      headers: {
        origin: LISTED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(LISTED);
    expect(String(preflight.headers['access-control-allow-methods'])).toMatch(/POST/);

    const call = await raw(guarded.httpUrl, 'GET', '/api/workers', {
      headers: { origin: LISTED },
      token: TOKEN,
    });
    expect(call.status).toBe(200);
    expect(call.headers['access-control-allow-origin']).toBe(LISTED);
    const noToken = await raw(guarded.httpUrl, 'GET', '/api/workers', {
      headers: { origin: LISTED },
    });
    expect(noToken.status).toBe(401);
  });

  it('without tokens, refuses a Host that is not a loopback name (DNS rebinding)', async () => {
    const port = new URL(open.httpUrl).port;
    const rebound = await raw(open.httpUrl, 'GET', '/api/workers', {
      headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}` },
    });
    expect(rebound.status).toBe(403);
    const noOrigin = await raw(open.httpUrl, 'GET', '/api/workers', {
      headers: { host: `evil.example:${port}` },
    });
    expect(noOrigin.status).toBe(403);
    const localhost = await raw(open.httpUrl, 'GET', '/api/workers', {
      headers: { host: `localhost:${port}`, origin: `http://localhost:${port}` },
    });
    expect(localhost.status).toBe(200);
    // With tokens a network name is fine: the token is the guard.
    const named = await raw(guarded.httpUrl, 'GET', '/api/workers', {
      headers: { host: 'flota.example' },
      token: TOKEN,
    });
    expect(named.status).toBe(200);
  });

  it('keeps the web UI and health endpoints open to any origin', async () => {
    for (const path of ['/', '/healthz']) {
      const res = await fetch(`${open.httpUrl}${path}`, { headers: { origin: FOREIGN } });
      expect(res.status, path).toBe(200);
    }
  });
});

describe('Socket.IO', () => {
  it('refuses a foreign page, on websocket and on polling', async () => {
    for (const transport of ['websocket', 'polling'] as const) {
      const attempt = await trySocket(guarded.httpUrl, {
        origin: FOREIGN,
        token: TOKEN,
        transport,
      });
      attempt.socket?.close();
      expect(attempt.refused, transport).toEqual(expect.any(String));
    }
    const plain = await trySocket(open.httpUrl, { origin: FOREIGN });
    plain.socket?.close();
    expect(plain.refused).toEqual(expect.any(String));
  });

  it("lets in the master's own origin, a listed one and a client without Origin", async () => {
    for (const origin of [guarded.httpUrl, LISTED, undefined]) {
      const attempt = await trySocket(guarded.httpUrl, { origin, token: TOKEN });
      attempt.socket?.close();
      expect(attempt.refused, String(origin)).toBeUndefined();
    }
    // A listed origin still needs its token.
    const noToken = await trySocket(guarded.httpUrl, { origin: LISTED });
    expect(noToken.refused).toMatch(/token/);
  });
});
