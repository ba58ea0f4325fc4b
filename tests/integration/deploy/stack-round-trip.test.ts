/**
 * The stack without Docker: a real master, a real worker and the autoscaler,
 * each started with the environment stack.yml gives its service (secrets read
 * the way the image entrypoint reads them), against Mosquitto with flota's
 * ACL, Redis with stack.yml's command line and password, and a local Docker
 * Engine API for the autoscaler. Only addresses are local.
 */
import { dirname } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAutoscalerConfig } from '../../../autoscaler/src/config.ts';
import { createSwarmDriver } from '../../../autoscaler/src/drivers/swarm.ts';
import { type AutoscalerHandle, startAutoscaler } from '../../../autoscaler/src/main.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import { autoscalerStatusSchema } from '../../../proto/src/schemas/autoscaler.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { startFakeDockerEngine } from '../../helpers/fake-docker-engine.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type Compose, serviceEnv, stackConfig } from '../../unit/deploy/support/tools.ts';
import { api, startTestMaster, startTestWorker, testLogger } from '../master/support.ts';
import { type DeployFixture, startDeployFixture } from './support.ts';

let fixture: DeployFixture;
let stack: Compose;
let secretsDir = '';
let master: MasterHandle | undefined;
let worker: WorkerHandle | undefined;
let auth: Record<string, string> = {};

beforeAll(async () => {
  fixture = await startDeployFixture();
  stack = stackConfig();
  secretsDir = dirname(fixture.secretPath('queue_url'));
  const masterEnv = serviceEnv(stack.services.master!, secretsDir);
  master = await startTestMaster({
    env: { ...masterEnv, MQTT_URL: fixture.mosquitto.url, QUEUE_URL: fixture.queueUrl },
  });
  const workerEnv = serviceEnv(stack.services['worker-cpu']!, secretsDir);
  worker = await startTestWorker(master, {
    ...workerEnv,
    MQTT_URL: fixture.mosquitto.url,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
  });
  // The first line is tenant "default" (the autoscaler's follows).
  const token = fixture.secret('api_tokens').split('\n')[0]?.split(':')[1] ?? '';
  auth = { authorization: `Bearer ${token}` };
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await fixture?.stop();
});

describe('stack.yml environment, end to end', () => {
  it('runs a task from the REST API to worker cpu-1 and back', async () => {
    const workers = await waitFor(
      async () => {
        const res = await api<{ workers: Array<{ id: string; state: string }> }>(
          master!,
          '/api/workers',
          { headers: auth },
        );
        return res.body.workers.find((w) => w.id === 'cpu-1' && w.state === 'online');
      },
      { what: 'worker cpu-1 online', timeoutMs: 15_000 },
    );
    expect(workers.id).toBe('cpu-1');
    const submitted = await api<{ id: string }>(master!, '/api/tasks', {
      body: { prompt: 'through the ACL', model: 'echo' },
      headers: auth,
    });
    expect(submitted.status).toBe(202);
    const task = await waitFor(
      async () => {
        const res = await api<{ state: string; result?: string; workerId?: string }>(
          master!,
          `/api/tasks/${submitted.body.id}`,
          { headers: auth },
        );
        return res.body.state === 'completed' ? res.body : undefined;
      },
      { what: 'task completed', timeoutMs: 20_000 },
    );
    expect(task).toMatchObject({ result: 'echo: through the ACL', workerId: 'cpu-1' });
  });

  it('refuses the API without a token', async () => {
    const res = await api(master!, '/api/workers');
    expect(res.status).toBe(401);
  });

  it('lets the observer follow the master and worker logs over MQTT', async () => {
    const topics = createTopics();
    const observer = mqtt.connect(fixture.mosquitto.url, {
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
          await api(master!, '/api/tasks', { body: { prompt: 'log me' }, headers: auth });
          return false;
        },
        { what: 'log lines from master and cpu-1', timeoutMs: 15_000, intervalMs: 250 },
      );
    } finally {
      await observer.endAsync(true);
    }
  });

  it("lets the autoscaler see the fleet with its own token and size the stack's service", async () => {
    const engine = await startFakeDockerEngine();
    let autoscaler: AutoscalerHandle | undefined;
    try {
      // One replica, below the pool's minimum: the first round scales up.
      engine.addService('flota_worker-cpu', { replicas: 1 });
      const config = loadAutoscalerConfig({
        ...serviceEnv(stack.services.autoscaler!, secretsDir),
        AUTOSCALE_MASTER_URL: master!.httpUrl,
        DOCKER_SOCKET: engine.socketPath,
        AUTOSCALE_HOST: '127.0.0.1',
        AUTOSCALE_PORT: '0',
        AUTOSCALE_INTERVAL_MS: '200',
      });
      const { logger: log } = testLogger('autoscaler');
      const driver = createSwarmDriver({
        socketPath: config.DOCKER_SOCKET,
        stack: config.AUTOSCALE_STACK,
        log,
      });
      autoscaler = await startAutoscaler(config, { driver, log });
      const { min } = config.pools[0]!.policy;
      expect(min).toBeGreaterThan(1);
      const updated = await waitFor(
        () => engine.requests.find((r) => r.path === '/services/flota_worker-cpu/update'),
        { what: 'an update of flota_worker-cpu' },
      );
      expect(updated.body).toMatchObject({ Mode: { Replicated: { Replicas: min } } });
      expect(engine.service('flota_worker-cpu')?.Spec.Mode).toEqual({
        Replicated: { Replicas: min },
      });
      const status = await waitFor(
        async () => {
          const res = await fetch(`${autoscaler!.statusUrl}/status`);
          const body = autoscalerStatusSchema.parse(await res.json());
          return body.pools.find((p) => p.observation?.online === 1);
        },
        { what: 'a round that saw cpu-1 online' },
      );
      expect(status).toMatchObject({ pool: 'worker-cpu' });
      expect(status.error).toBeUndefined();
    } finally {
      await autoscaler?.close();
      await engine.close();
    }
  });
});
