/**
 * The stack without Docker: a real master and a real worker, each started
 * with the environment stack.yml gives its service (secrets read the way the
 * image entrypoint reads them), against Mosquitto with flota's ACL and Redis
 * with stack.yml's command line and password. Only addresses are local.
 */
import { dirname } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { serviceEnv, stackConfig } from '../../unit/deploy/support/tools.ts';
import { api, startTestMaster, startTestWorker } from '../master/support.ts';
import { type DeployFixture, startDeployFixture } from './support.ts';

let fixture: DeployFixture;
let master: MasterHandle | undefined;
let worker: WorkerHandle | undefined;
let auth: Record<string, string> = {};

beforeAll(async () => {
  fixture = await startDeployFixture();
  const stack = stackConfig();
  const secretsDir = dirname(fixture.secretPath('queue_url'));
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
  const token = fixture.secret('api_tokens').split(':')[1] ?? '';
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
});
