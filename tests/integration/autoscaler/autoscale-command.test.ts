/**
 * `flota autoscale` with the local driver, as its own process, against a real
 * master that requires API tokens: the way a worker machine would size its
 * own workers for a remote master. Also the autoscaler's eyes (masterSource)
 * against that master, and its small HTTP surface.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { masterSource, ObserveError } from '../../../autoscaler/src/observe.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import { autoscalerStatusSchema } from '../../../proto/src/schemas/autoscaler.ts';
import { type FlotaProcess, spawnFlota } from '../../e2e/support/flota-process.ts';
import { freePort } from '../../helpers/free-port.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster } from '../master/support.ts';

const TOKEN = 'autoscaler-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let redis: RedisServer;
let master: MasterHandle;
let autoscale: FlotaProcess | undefined;
let statusUrl: string;

beforeAll(async () => {
  redis = await startRedis();
  // An admin token: the autoscaler issues each worker it starts its own credential.
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${TOKEN}:admin` },
  });
  const port = await freePort();
  statusUrl = `http://127.0.0.1:${port}`;
  autoscale = spawnFlota({
    name: 'flota autoscale',
    args: ['autoscale'],
    env: {
      AUTOSCALE_DRIVER: 'local',
      AUTOSCALE_MASTER_URL: master.httpUrl,
      AUTOSCALE_API_TOKEN: TOKEN,
      AUTOSCALE_POOLS: 'edge:cpu:1-2',
      AUTOSCALE_INTERVAL_MS: '200',
      AUTOSCALE_COOLDOWN_UP_MS: '200',
      AUTOSCALE_PORT: String(port),
      // What its workers need: they inherit the autoscaler's environment.
      MQTT_URL: master.mqttUrl,
      MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
      ECHO_DELAY_MS: '400',
      SLOTS: '1',
      HEARTBEAT_MS: '500',
    },
  });
});

afterAll(async () => {
  await autoscale?.stop();
  await master?.close();
  await redis?.stop();
});

const onlineIds = async () => {
  const res = await api<{ workers: Array<{ id: string; state: string }> }>(master, '/api/workers', {
    headers: auth,
  });
  return res.body.workers.filter((w) => w.state === 'online').map((w) => w.id);
};

describe('flota autoscale (local driver)', () => {
  it('brings its pool up to the minimum, then grows it under a backlog', async () => {
    await waitFor(async () => (await onlineIds()).includes('edge-1'), {
      timeoutMs: 20_000,
      what: 'worker edge-1 online',
    });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await api<{ id: string }>(master, '/api/tasks', {
        body: { prompt: `p${i}` },
        headers: auth,
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    await waitFor(async () => (await onlineIds()).includes('edge-2'), {
      timeoutMs: 20_000,
      what: 'worker edge-2 online',
    });
    await waitFor(
      async () => {
        const views = await Promise.all(
          ids.map((id) => api<{ state: string }>(master, `/api/tasks/${id}`, { headers: auth })),
        );
        return views.every((v) => v.body.state === 'completed');
      },
      { timeoutMs: 30_000, what: 'every task completed' },
    );
  });

  it('answers /healthz, /status and /metrics, and nothing else', async () => {
    expect((await fetch(`${statusUrl}/healthz`)).status).toBe(200);
    const status = autoscalerStatusSchema.parse(await (await fetch(`${statusUrl}/status`)).json());
    expect(status.pools).toEqual([
      expect.objectContaining({ pool: 'edge', capability: 'cpu', min: 1, max: 2 }),
    ]);
    const metrics = await (await fetch(`${statusUrl}/metrics`)).text();
    expect(metrics).toMatch(/flota_autoscaler_decisions_total\{pool="edge",action="up"/);
    expect((await fetch(`${statusUrl}/nope`)).status).toBe(404);
    expect((await fetch(`${statusUrl}/status`, { method: 'POST' })).status).toBe(405);
  });

  it('SIGTERM drains its workers and exits 0', async () => {
    const process = autoscale!;
    process.child.kill('SIGTERM');
    await expect(process.exited).resolves.toEqual({ code: 0, signal: null });
    await waitFor(async () => (await onlineIds()).length === 0, {
      timeoutMs: 10_000,
      what: 'every edge worker offline',
    });
  });
});

describe('masterSource', () => {
  it('reads the fleet with a token, and says plainly when it cannot', async () => {
    const fleet = await masterSource(master.httpUrl, TOKEN).read();
    expect(fleet.metrics.workers).toEqual(expect.objectContaining({ slots: expect.any(Number) }));
    await expect(masterSource(master.httpUrl).read()).rejects.toThrow(
      /answered \/api\/metrics with HTTP 401|answered \/api\/workers with HTTP 401/,
    );
    const closed = `http://127.0.0.1:${await freePort()}`;
    await expect(masterSource(closed, TOKEN, 1_000).read()).rejects.toBeInstanceOf(ObserveError);
  });
});
