/**
 * A worker with PROVIDER=llama and a tiny GGUF model in MODELS_DIR: what its
 * status and heartbeats say, a task over MQTT + gRPC (test master), and one
 * task end to end through a real master.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/logger.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { Assignment, TaskView } from '../../../proto/src/schemas/task.ts';
import { heartbeatSchema, workerStatusSchema } from '../../../proto/src/schemas/worker.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { writeTinyGguf } from '../../helpers/tiny-gguf.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../master/support.ts';
import { LogSink, startBroker, startMaster, type TestBroker, type TestMaster } from './support.ts';

const suffix = randomBytes(4).toString('hex');
const prefix = `test-${suffix}/v1`;
const topics = createTopics(prefix);
const workerId = `llama-${suffix}`;

let dir: string;
let modelBytes: number;
let broker: TestBroker;
let master: TestMaster;
let observer: MqttClient;
let worker: WorkerHandle;
const messages: Array<{ topic: string; json: unknown }> = [];
const sink = new LogSink();

const words = (text: string) => text.trim().split(/\s+/);

function assign(overrides: Partial<Assignment> = {}): Assignment {
  const taskId = `task-${randomBytes(4).toString('hex')}`;
  const assignment: Assignment = {
    taskId,
    attempt: 1,
    lease: `lease-${taskId}`,
    model: 'tiny-chat',
    prompt: 'hello there',
    params: { maxTokens: 6, temperature: 0 },
    deadline: Date.now() + 30_000,
    queuedAt: Date.now(),
    ...overrides,
  };
  observer.publish(topics.tasks(workerId), JSON.stringify(assignment), { qos: 1 });
  return assignment;
}

const heartbeats = () =>
  messages
    .filter((m) => m.topic === topics.heartbeat(workerId))
    .map((m) => heartbeatSchema.parse(m.json));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-llama-worker-'));
  modelBytes = await writeTinyGguf(join(dir, 'tiny-chat.gguf'), { chatTemplate: true, seed: 1 });
  [broker, master] = await Promise.all([startBroker(), startMaster()]);
  observer = mqtt.connect(broker.url, { clientId: `observer-${suffix}` });
  observer.on('message', (topic, payload) => {
    messages.push({ topic, json: JSON.parse(payload.toString()) });
  });
  await observer.subscribeAsync(`${prefix}/workers/${workerId}/#`, { qos: 1 });
  const config = loadWorkerConfig({
    MQTT_URL: broker.url,
    MQTT_PREFIX: prefix,
    MASTER_GRPC: master.address,
    WORKER_TOKEN: 'test-credential',
    WORKER_ID: workerId,
    HEARTBEAT_MS: '100',
    PROVIDER: 'llama',
    MODELS_DIR: dir,
    SLOTS: '2',
    MODEL_CONTEXT_SIZE: '512',
    MODEL_THREADS: '1',
  });
  worker = await startWorker(config, {
    logger: createLogger({ source: workerId, level: 'debug', destination: sink }),
  });
});

afterAll(async () => {
  await worker?.close();
  await observer?.endAsync();
  await Promise.all([broker?.close(), master?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('llama worker', () => {
  it('serves the models in MODELS_DIR and advertises them with their catalog', async () => {
    const json = await waitFor(
      () => messages.find((m) => m.topic === topics.status(workerId))?.json,
      { what: 'online status' },
    );
    const status = workerStatusSchema.parse(json);
    expect(status).toMatchObject({
      state: 'online',
      kind: 'cpu',
      models: ['tiny-chat'],
      providers: ['llama'],
      continuation: true,
      catalog: [
        {
          name: 'tiny-chat',
          provider: 'llama',
          sizeBytes: modelBytes,
          quantization: 'F32',
          contextLength: 512,
        },
      ],
    });
  });

  it('lists no model in memory before the first task', async () => {
    const first = await waitFor(() => heartbeats()[0], { what: 'a heartbeat' });
    expect(first.loaded).toEqual([]);
  });

  it('answers a task, streamed, and then lists the model as loaded', async () => {
    const a = assign();
    const attempt = await waitFor(() => master.attempts.find((s) => s.final?.taskId === a.taskId), {
      what: 'result',
    });
    const result = attempt.final;
    expect(result).toMatchObject({ workerId, model: 'tiny-chat', error: '' });
    expect(words(result?.text ?? '')).toHaveLength(6);
    expect(attempt.chunks.map((c) => c.text).join('')).toBe(result?.text);
    expect(result?.usage).toMatchObject({ outputTokens: 6 });
    const beat = await waitFor(() => heartbeats().find((h) => (h.loaded ?? []).length > 0), {
      what: 'a heartbeat with the model loaded',
    });
    expect(beat.loaded).toEqual([
      {
        name: 'tiny-chat',
        memMb: expect.any(Number),
        loadMs: expect.any(Number),
        lastUsedAt: expect.any(Number),
      },
    ]);
    expect(beat.loaded?.[0]?.memMb).toBeGreaterThan(0);
  });
});

describe('llama worker behind a real master', () => {
  let redis: RedisServer;
  let realMaster: MasterHandle;
  let realWorker: WorkerHandle;

  beforeAll(async () => {
    redis = await startRedis();
    realMaster = await startTestMaster({ queueUrl: redis.url });
    realWorker = await startTestWorker(realMaster, {
      WORKER_ID: `llama-e2e-${suffix}`,
      PROVIDER: 'llama',
      MODELS_DIR: dir,
      MODEL_CONTEXT_SIZE: '512',
      MODEL_THREADS: '1',
      WORKER_KIND: 'cpu',
    });
  });

  afterAll(async () => {
    await realWorker?.close();
    await realMaster?.close();
    await redis?.stop();
  });

  it('runs a submitted task on the tiny model', async () => {
    await waitFor(
      async () => {
        const { body } = await api<{ workers: { id: string; state: string }[] }>(
          realMaster,
          '/api/workers',
        );
        return body.workers?.some((w) => w.state === 'online');
      },
      { what: 'llama worker online' },
    );
    const submitted = await api<{ id: string }>(realMaster, '/api/tasks', {
      body: { model: 'tiny-chat', prompt: 'the cat sat', params: { maxTokens: 5, temperature: 0 } },
    });
    expect(submitted.status).toBe(202);
    const view = await waitFor(
      async () => {
        const task = (await api<TaskView>(realMaster, `/api/tasks/${submitted.body.id}`)).body;
        return task.state === 'completed' || task.state === 'failed' ? task : undefined;
      },
      { timeoutMs: 30_000, what: 'task finished' },
    );
    expect(view).toMatchObject({ state: 'completed', usage: { outputTokens: 5 } });
    expect(words(view.result ?? '')).toHaveLength(5);
  });
});
