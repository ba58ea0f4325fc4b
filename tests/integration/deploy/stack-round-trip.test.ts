/**
 * The stack without Docker: a real master, a real worker and the autoscaler,
 * each started with the environment stack.yml gives its service (secrets read
 * the way the image entrypoint reads them), against Mosquitto with its
 * dynamic security as the stack sets it up, Redis with stack.yml's command
 * line and password, and a local Docker Engine API for the autoscaler. The
 * worker enrolls with its service's join token, the master adds its broker
 * login, every HTTP and gRPC call goes over TLS with the certificates
 * deploy/make-secrets.sh made. Only addresses are local.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import mqtt from 'mqtt';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { autoscalerStatusSchema } from '../../../proto/src/schemas/autoscaler.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { type FlotaProcess, spawnFlota } from '../../e2e/support/flota-process.ts';
import { startFakeDockerEngine } from '../../helpers/fake-docker-engine.ts';
import { freePort } from '../../helpers/free-port.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type Compose, serviceEnv, stackConfig } from '../../unit/deploy/support/tools.ts';
import { startTestMaster, testLogger } from '../master/support.ts';
import { type DeployFixture, startDeployFixture } from './support.ts';

let fixture: DeployFixture;
let stack: Compose;
let secretsDir = '';
let dataDir = '';
let master: MasterHandle | undefined;
let worker: WorkerHandle | undefined;
let auth: Record<string, string> = {};
/** Trusts the master the way the stack's clients do: by tls_ca. */
let tls: Agent;

/** A REST call to the master over HTTPS. */
async function api<T = unknown>(
  path: string,
  init?: { body?: unknown; headers?: Record<string, string> },
) {
  const res = await fetch(`${master!.httpUrl}${path}`, {
    method: init?.body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...init?.headers },
    body: init?.body === undefined ? undefined : JSON.stringify(init.body),
    dispatcher: tls,
  });
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  fixture = await startDeployFixture();
  stack = stackConfig();
  secretsDir = dirname(fixture.secretPath('queue_url'));
  dataDir = mkdtempSync(join(tmpdir(), 'flota-stack-master-'));
  tls = new Agent({ connect: { ca: readFileSync(fixture.secretPath('tls_ca'), 'utf8') } });
  const masterEnv = serviceEnv(stack.services.master!, secretsDir);
  master = await startTestMaster({
    env: {
      ...masterEnv,
      // Loopback here; the stack's 0.0.0.0 is checked in tests/unit/deploy/env.test.ts.
      HOST: '127.0.0.1',
      FLOTA_DATA_DIR: dataDir,
      MQTT_URL: fixture.mosquitto.url,
      QUEUE_URL: fixture.queueUrl,
    },
  });
  // Not startTestWorker: that hands the worker a credential, and this one
  // must enroll with the join token the stack gives it.
  const config = loadWorkerConfig({
    ...serviceEnv(stack.services['worker-cpu']!, secretsDir),
    MQTT_URL: fixture.mosquitto.url,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    HEARTBEAT_MS: '500',
  });
  expect(config.joinToken).toBeDefined();
  expect(config.workerToken).toBeUndefined();
  worker = await startWorker(config, { logger: testLogger(config.workerId) });
  // The first line is tenant "default" (the autoscaler's follows).
  const token = fixture.secret('api_tokens').split('\n')[0]?.split(':')[1] ?? '';
  auth = { authorization: `Bearer ${token}` };
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await tls?.close();
  await fixture?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('stack.yml environment, end to end', () => {
  it('runs a task from the REST API to worker cpu-1, enrolled with its join token, and back', async () => {
    const workers = await waitFor(
      async () => {
        const res = await api<{ workers: Array<{ id: string; state: string }> }>('/api/workers', {
          headers: auth,
        });
        return res.body.workers.find((w) => w.id === 'cpu-1' && w.state === 'online');
      },
      { what: 'worker cpu-1 online', timeoutMs: 15_000 },
    );
    expect(workers.id).toBe('cpu-1');
    const submitted = await api<{ id: string }>('/api/tasks', {
      body: { prompt: 'through dynamic security', model: 'echo' },
      headers: auth,
    });
    expect(submitted.status).toBe(202);
    const task = await waitFor(
      async () => {
        const res = await api<{ state: string; result?: string; workerId?: string }>(
          `/api/tasks/${submitted.body.id}`,
          { headers: auth },
        );
        return res.body.state === 'completed' ? res.body : undefined;
      },
      { what: 'task completed', timeoutMs: 20_000 },
    );
    expect(task).toMatchObject({ result: 'echo: through dynamic security', workerId: 'cpu-1' });
  });

  it('refuses the API without a token, and anyone without a login on the broker', async () => {
    const res = await api('/api/workers');
    expect(res.status).toBe(401);
    const anonymous = mqtt.connect(fixture.mosquitto.url, { reconnectPeriod: 0 });
    try {
      const refused = await new Promise<Error>((resolve) => anonymous.once('error', resolve));
      expect(refused.message).toMatch(/Not authorized/i);
    } finally {
      anonymous.end(true);
    }
  });

  it('lets the observer follow the master and worker logs over MQTT', async () => {
    const topics = createTopics();
    const observer = mqtt.connect(fixture.mosquitto.url, {
      // As logs.sh --mqtt logs in: the observer's login is bound to this client id.
      clientId: 'flota-observer',
      username: '_observer',
      password: fixture.secret('mqtt_observer_password'),
      reconnectPeriod: 0,
    });
    try {
      const sources = new Set<string>();
      observer.on('message', (topic) => sources.add(topic));
      await observer.subscribeAsync(topics.allLogs(), { qos: 0 });
      // Tasks make both processes log; submit until a line of each has arrived.
      await waitFor(
        async () => {
          if (sources.has(topics.log('master')) && sources.has(topics.log('cpu-1'))) return true;
          await api('/api/tasks', { body: { prompt: 'log me' }, headers: auth });
          return false;
        },
        { what: 'log lines from master and cpu-1', timeoutMs: 15_000, intervalMs: 250 },
      );
    } finally {
      await observer.endAsync(true);
    }
  });

  it("lets the autoscaler reach the master over HTTPS with its token and size the stack's service", async () => {
    const engine = await startFakeDockerEngine();
    let autoscaler: FlotaProcess | undefined;
    try {
      // One replica, below the pool's minimum: the first round scales up.
      engine.addService('flota_worker-cpu', { replicas: 1 });
      const env = serviceEnv(stack.services.autoscaler!, secretsDir);
      // Its own process: NODE_EXTRA_CA_CERTS only counts when Node starts.
      expect(env.NODE_EXTRA_CA_CERTS).toBe(fixture.secretPath('tls_ca'));
      const port = await freePort();
      autoscaler = spawnFlota({
        name: 'autoscaler',
        args: ['autoscale'],
        env: {
          ...env,
          AUTOSCALE_MASTER_URL: master!.httpUrl,
          DOCKER_SOCKET: engine.socketPath,
          AUTOSCALE_HOST: '127.0.0.1',
          AUTOSCALE_PORT: String(port),
          AUTOSCALE_INTERVAL_MS: '200',
        },
      });
      const updated = await waitFor(
        () => engine.requests.find((r) => r.path === '/services/flota_worker-cpu/update'),
        { what: 'an update of flota_worker-cpu', timeoutMs: 20_000 },
      );
      expect(updated.body).toMatchObject({ Mode: { Replicated: { Replicas: 2 } } });
      const status = await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined);
          if (!res?.ok) return undefined;
          const body = autoscalerStatusSchema.parse(await res.json());
          return body.pools.find((p) => p.observation?.online === 1);
        },
        { what: 'a round that saw cpu-1 online', timeoutMs: 20_000 },
      );
      expect(status).toMatchObject({ pool: 'worker-cpu' });
      expect(status.error).toBeUndefined();
    } catch (err) {
      if (autoscaler) process.stderr.write(autoscaler.stderr() + autoscaler.stdout());
      throw err;
    } finally {
      await autoscaler?.stop();
      await engine.close();
    }
  });
});
