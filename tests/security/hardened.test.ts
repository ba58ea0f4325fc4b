/**
 * Attacks on a hardened single-machine setup: `flota up` on HOST=0.0.0.0
 * with API tokens for two tenants and an admin, TLS everywhere (a CA the test
 * makes) and a low rate limit. The attacker reaches every port but holds no
 * credential, or holds one tenant's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { io as connectSocket } from 'socket.io-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadMasterPackage } from '../../proto/src/grpc.ts';
import {
  createTopics,
  DEFAULT_TOPIC_PREFIX,
  MQTT_WS_PATH,
  workerClientId,
} from '../../proto/src/topics.ts';
import { dumpOutput, type FlotaProcess, spawnFlota } from '../e2e/support/flota-process.ts';
import { freePort } from '../helpers/free-port.ts';
import { createTestCa, type TestCa } from '../helpers/test-ca.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { type RawAnswer, raw } from '../integration/http/support.ts';
import {
  closeQuietly,
  grpcClient,
  listenAddresses,
  mqttConnect,
  reportResult,
  subscribeGranted,
} from './support/attacker.ts';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const OPS = 'ops-token-0123456789abcdefghi';
/** High enough for the polling the tests do, low enough to reach in a second. */
const RPM = 300;
const topics = createTopics(DEFAULT_TOPIC_PREFIX);

let ca: TestCa;
let caPem: string;
let dataDir: string;
let up: FlotaProcess;
let ports: { http: number; grpc: number; mqtt: number };
let baseUrl: string;

/** HTTPS with the test CA trusted. */
const https = (
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawAnswer> => raw(baseUrl, method, path, { ...options, ca: caPem });

async function submitAs(token: string, prompt: string): Promise<string> {
  const res = await https('POST', '/api/tasks', { token, body: { prompt } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return String(res.body.id);
}

async function completedAs(token: string, id: string) {
  return waitFor(
    async () => {
      const res = await https('GET', `/api/tasks/${id}`, { token });
      return res.body.state === 'completed' ? res.body : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `task ${id} completed` },
  );
}

async function workerState(id: string): Promise<string> {
  const res = await https('GET', '/api/workers', { token: OPS });
  const workers = (res.body.workers ?? []) as { id: string; state: string }[];
  return workers.find((w) => w.id === id)?.state ?? 'absent';
}

beforeAll(async () => {
  ca = await createTestCa();
  caPem = await ca.read(ca.caCert);
  dataDir = await mkdtemp(join(tmpdir(), 'flota-sec-hardened-'));
  ports = { http: await freePort(), grpc: await freePort(), mqtt: await freePort() };
  baseUrl = `https://127.0.0.1:${ports.http}`;
  up = spawnFlota({
    name: 'flota up (hardened)',
    args: ['up'],
    env: {
      HOST: '0.0.0.0',
      PORT: String(ports.http),
      GRPC_PORT: String(ports.grpc),
      MQTT_PORT: String(ports.mqtt),
      FLOTA_DATA_DIR: dataDir,
      WORKERS: '2',
      ECHO_DELAY_MS: '0',
      API_TOKENS: `alice:${ALICE},bob:${BOB},ops:${OPS}:admin`,
      TLS_CERT: ca.server.cert,
      TLS_KEY: ca.server.key,
      TLS_CA: ca.caCert,
      RATE_LIMIT_RPM: String(RPM),
    },
  });
  await waitFor(
    async () => {
      if (up.hasExited()) throw new Error(`flota up exited:\n${up.stderr().slice(-3_000)}`);
      const res = await https('GET', '/api/workers', { token: OPS }).catch(() => undefined);
      const workers = (res?.body.workers ?? []) as { state: string }[];
      return workers.filter((w) => w.state === 'online').length === 2 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'the hardened system with two workers online' },
  );
});

beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput([up]));
});

afterAll(async () => {
  await up?.stop('SIGINT');
  await rm(dataDir, { recursive: true, force: true });
  await ca?.remove();
});

describe('hardened: HTTP API', () => {
  it('listens where asked (every interface) and only speaks TLS', async () => {
    for (const port of [ports.http, ports.grpc, ports.mqtt]) {
      expect((await listenAddresses(port)).some((a) => a === '0.0.0.0' || a === '::')).toBe(true);
    }
    const plain = await fetch(`http://127.0.0.1:${ports.http}/api/workers`).catch((e: Error) => e);
    expect(plain instanceof Error || plain.status >= 400).toBe(true);
  });

  it('no token, a wrong token: 401', async () => {
    expect((await https('GET', '/api/workers')).status).toBe(401);
    expect((await https('GET', '/api/workers', { token: 'x'.repeat(40) })).status).toBe(401);
    expect((await https('POST', '/api/tasks', { body: { prompt: 'hi' } })).status).toBe(401);
  });

  it("a tenant cannot read, cancel or re-prioritise another tenant's task; an admin can read it", async () => {
    const id = await submitAs(ALICE, 'alice only');
    await completedAs(ALICE, id);
    expect((await https('GET', `/api/tasks/${id}`, { token: BOB })).status).toBe(404);
    expect((await https('DELETE', `/api/tasks/${id}`, { token: BOB })).status).toBe(404);
    expect(
      (await https('PATCH', `/api/tasks/${id}`, { token: BOB, body: { priority: 5 } })).status,
    ).toBe(404);
    const asAdmin = await https('GET', `/api/tasks/${id}`, { token: OPS });
    expect(asAdmin.status).toBe(200);
    expect(String(asAdmin.body.result)).toContain('alice only');
  });

  it('fleet control is for admins only', async () => {
    expect((await https('POST', '/api/workers/x-1/credential', { token: ALICE })).status).toBe(403);
    expect((await https('POST', '/api/workers/local-1/revoke', { token: ALICE })).status).toBe(403);
    expect(await workerState('local-1')).toBe('online');
  });

  it('a page from another origin is refused on REST and on Socket.IO', async () => {
    const rest = await https('GET', '/api/workers', {
      token: ALICE,
      headers: { origin: 'https://evil.example' },
    });
    expect(rest.status).toBe(403);
    expect(rest.headers['access-control-allow-origin']).toBeUndefined();
    const own = await https('GET', '/api/workers', {
      token: ALICE,
      headers: { origin: baseUrl },
    });
    expect(own.status).toBe(200);

    const socket = connectSocket(baseUrl, {
      transports: ['websocket'],
      auth: { token: ALICE },
      extraHeaders: { origin: 'https://evil.example' },
      ca: caPem,
      reconnection: false,
    });
    const outcome = await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (err) => resolve(`refused: ${err.message}`));
    });
    socket.close();
    expect(outcome).toMatch(/^refused/);
  });
});

describe('hardened: broker and gRPC', () => {
  it('MQTT needs TLS; an anonymous TLS client may read logs and nothing else', async () => {
    const plain = await mqttConnect(`mqtt://127.0.0.1:${ports.mqtt}`, { connectTimeout: 2_000 });
    expect(plain.client).toBeUndefined();
    const { client } = await mqttConnect(`mqtts://127.0.0.1:${ports.mqtt}`, { ca: caPem });
    expect(client).toBeDefined();
    if (!client) return;
    expect(await subscribeGranted(client, `${DEFAULT_TOPIC_PREFIX}/logs/#`)).toBe(1);
    expect(await subscribeGranted(client, topics.tasks('local-1'))).toBe(128);
    expect(await subscribeGranted(client, topics.allHeartbeats())).toBe(128);
    await closeQuietly(client);
  });

  it('MQTT over wss (the HTTPS port) keeps the same rules', async () => {
    const url = `wss://127.0.0.1:${ports.http}${MQTT_WS_PATH}`;
    const { client } = await mqttConnect(url, { ca: caPem });
    expect(client).toBeDefined();
    if (!client) return;
    expect(await subscribeGranted(client, `${DEFAULT_TOPIC_PREFIX}/logs/#`)).toBe(1);
    expect(await subscribeGranted(client, topics.tasks('local-1'))).toBe(128);
    await closeQuietly(client);
    const id = 'wss-worker';
    const issued = await https('POST', `/api/workers/${id}/credential`, { token: OPS });
    expect(issued.status).toBe(201);
    const worker = await mqttConnect(url, {
      ca: caPem,
      clientId: workerClientId(id),
      username: id,
      password: String(issued.body.credential),
    });
    expect(worker.refused).toBeUndefined();
    if (!worker.client) return;
    expect(await subscribeGranted(worker.client, topics.tasks(id))).toBe(1);
    expect(await subscribeGranted(worker.client, topics.tasks('local-1'))).toBe(128);
    await closeQuietly(worker.client);
  });

  it('gRPC needs TLS and a worker credential', async () => {
    const { proto } = loadMasterPackage();
    const forged = {
      taskId: 't',
      attempt: 1,
      lease: 'l',
      workerId: 'local-1',
      text: 'forged',
      model: 'echo',
    };
    // Plaintext to the TLS port: no call gets through.
    const plain = grpcClient(`127.0.0.1:${ports.grpc}`);
    const overPlaintext = await reportResult(plain, forged, { workerId: 'local-1', bearer: ALICE });
    expect(overPlaintext.ack).toBeUndefined();
    expect(overPlaintext.code).toBe(grpc.status.UNAVAILABLE);
    plain.close();
    // TLS, but an API token instead of the worker's credential: the Connect stream is refused.
    const secure = new proto.flota.v1.Master(
      `localhost:${ports.grpc}`,
      grpc.credentials.createSsl(Buffer.from(caPem)),
    );
    const outcome = await reportResult(secure, forged, { workerId: 'local-1', bearer: ALICE });
    expect(outcome.ack).toBeUndefined();
    expect(outcome.code).toBe(grpc.status.UNAUTHENTICATED);
    secure.close();
  });

  it('a revoked worker is cut off within seconds and cannot come back; work goes on', async () => {
    const revoked = await https('POST', '/api/workers/local-2/revoke', { token: OPS });
    expect(revoked.status).toBe(200);
    const offlineAt = Date.now();
    await waitFor(async () => ((await workerState('local-2')) === 'offline' ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'local-2 offline after its revocation',
    });
    expect(Date.now() - offlineAt).toBeLessThan(5_000);
    const ids = await Promise.all([1, 2, 3, 4].map((n) => submitAs(ALICE, `after revoke ${n}`)));
    for (const id of ids) {
      const view = await completedAs(ALICE, id);
      expect(view.workerId).toBe('local-1');
    }
    expect(await workerState('local-2')).toBe('offline');
  });
});

describe('hardened: limits', () => {
  // Last: spends alice's budget for the minute.
  it('a tenant over RATE_LIMIT_RPM gets 429 with Retry-After; another tenant is not affected', async () => {
    let limited: RawAnswer | undefined;
    for (let i = 0; i < RPM + 10 && !limited; i++) {
      const res = await https('GET', '/api/workers', { token: ALICE });
      expect(res.headers['x-ratelimit-limit']).toBe(String(RPM));
      if (res.status === 429) limited = res;
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited?.body.code).toBe('rate_limited');
    expect((await https('GET', '/api/workers', { token: BOB })).status).toBe(200);
  });
});
