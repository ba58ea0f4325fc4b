/**
 * The model registry against a real master (Redis store, embedded broker):
 * a real echo worker, and two hand-written llama workers whose status
 * carries a catalog and whose heartbeats list what they hold loaded.
 * `GET /api/models` and `GET /v1/models` report who serves and who has
 * loaded each model, dispatch goes to the worker holding the model, and
 * `/metrics` has the per-model series.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { type ModelEntry, modelsResponseSchema } from '../../../proto/src/schemas/models.ts';
import type { OpenAiModel } from '../../../proto/src/schemas/openai.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { llamaStatus, type RawWorker, startRawWorker } from '../../helpers/raw-worker.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { raw } from '../http/support.ts';
import { startTestMaster, startTestWorker } from './support.ts';

const TOKEN = 'alice-token-0123456789abcdef';
const TINY_LOADED = { name: 'tiny', memMb: 700, loadMs: 1_500, lastUsedAt: 1 };

let redis: RedisServer;
let master: MasterHandle;
let echo: WorkerHandle;
let warm: RawWorker;
let cold: RawWorker;

const get = (path: string) => raw(master.httpUrl, 'GET', path, { token: TOKEN });
const models = async () => modelsResponseSchema.parse((await get('/api/models')).body).models;
const entry = async (name: string): Promise<ModelEntry | undefined> =>
  (await models()).find((m) => m.name === name);
const metricsText = async () => {
  const res = await fetch(`${master.httpUrl}/metrics`);
  return res.text();
};

async function rawWorker(id: string): Promise<RawWorker> {
  return startRawWorker(id, {
    mqttUrl: master.mqttUrl,
    credential: await master.issueWorkerCredential(id),
    status: llamaStatus(['tiny', 'small']),
  });
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url, env: { API_TOKENS: `alice:${TOKEN}` } });
  echo = await startTestWorker(master, {
    WORKER_ID: 'm-echo',
    ECHO_CHUNK_SIZE: '4',
    ECHO_DELAY_MS: '20',
  });
  warm = await rawWorker('m-warm');
  cold = await rawWorker('m-cold');
  await warm.beat([TINY_LOADED]);
  await cold.beat([]);
  await waitFor(async () => (await entry('tiny'))?.loadedIds.length === 1, {
    what: 'tiny loaded on one worker',
  });
  await waitFor(async () => (await entry('echo'))?.workerIds.length === 1, {
    what: 'the echo worker listed',
  });
}, 60_000);

afterAll(async () => {
  await warm?.close();
  await cold?.close();
  await echo?.close();
  await master?.close();
  await redis?.stop();
});

describe('GET /api/models', () => {
  it('needs a token like every /api route', async () => {
    expect((await raw(master.httpUrl, 'GET', '/api/models')).status).toBe(401);
    expect((await get('/api/models')).status).toBe(200);
  });

  it('lists who serves each model, who has it loaded, free slots and the catalog', async () => {
    const list = await models();
    expect(list.map((m) => m.name)).toEqual(['echo', 'small', 'tiny']);
    expect(list.find((m) => m.name === 'tiny')).toEqual({
      name: 'tiny',
      providers: ['llama'],
      kinds: ['cpu'],
      local: true,
      workers: { cpu: 2, gpu: 0 },
      workerIds: ['m-cold', 'm-warm'],
      loaded: { cpu: 1, gpu: 0 },
      loadedIds: ['m-warm'],
      freeSlots: 8,
      sizeBytes: 600_000_000,
      quantization: 'Q4_K_M',
      contextLength: 2048,
      memMb: 700,
      loadMs: 1_500,
    });
    expect(list.find((m) => m.name === 'small')).toMatchObject({ local: true, loadedIds: [] });
    expect(list.find((m) => m.name === 'echo')).toMatchObject({
      providers: ['echo'],
      local: false,
      workerIds: ['m-echo'],
      loadedIds: [],
    });
  });
});

describe('GET /v1/models', () => {
  it('answers from the same registry, in OpenAI’s shape with flota’s view under `flota`', async () => {
    const res = await get('/v1/models');
    expect(res.status).toBe(200);
    const data = res.body.data as OpenAiModel[];
    expect(data.map((m) => m.id)).toEqual(['echo', 'small', 'tiny']);
    const { name, ...tinyEntry } = (await entry('tiny')) as ModelEntry;
    expect(data.find((m) => m.id === 'tiny')).toEqual({
      id: name,
      object: 'model',
      created: 0,
      owned_by: 'flota',
      flota: tinyEntry,
    });
    const one = await get('/v1/models/tiny');
    expect(one.body).toMatchObject({ id: 'tiny', flota: { loadedIds: ['m-warm'] } });
  });
});

describe('dispatch', () => {
  it('sends a task to the worker that has its model loaded, and follows loads and unloads', async () => {
    const submit = async () => {
      const res = await raw(master.httpUrl, 'POST', '/api/tasks', {
        token: TOKEN,
        body: { prompt: 'hello', model: 'tiny' },
      });
      return res.body.id as string;
    };
    const first = await submit();
    await waitFor(() => warm.assignments.some((a) => a.taskId === first), {
      what: 'the task on the warm worker',
    });
    // The model moves: the warm worker drops it, the cold one loads it.
    await warm.beat([]);
    await cold.beat([TINY_LOADED]);
    await waitFor(async () => (await entry('tiny'))?.loadedIds.join() === 'm-cold', {
      what: 'tiny loaded on the other worker',
    });
    const second = await submit();
    await waitFor(() => cold.assignments.some((a) => a.taskId === second), {
      what: 'the task on the newly warm worker',
    });
    expect(warm.assignments.map((a) => a.taskId)).toEqual([first]);
    for (const id of [first, second])
      await raw(master.httpUrl, 'DELETE', `/api/tasks/${id}`, { token: TOKEN });
  });
});

describe('per-model metrics', () => {
  it('reports loaded workers, memory and load time per model, and TTFT and tokens/s of answers', async () => {
    const res = await raw(master.httpUrl, 'POST', '/api/tasks', {
      token: TOKEN,
      body: { prompt: 'count my tokens please', model: 'echo' },
    });
    const id = res.body.id as string;
    await waitFor(async () => (await get(`/api/tasks/${id}`)).body.state === 'completed', {
      what: 'the echo task completed',
    });
    const text = await metricsText();
    expect(text).toMatch(/^flota_model_workers\{model="tiny",state="serving"\} 2$/m);
    expect(text).toMatch(/^flota_model_workers\{model="tiny",state="loaded"\} 1$/m);
    expect(text).toMatch(/^flota_model_workers\{model="echo",state="serving"\} 1$/m);
    expect(text).toMatch(
      new RegExp(`^flota_model_memory_bytes\\{model="tiny"\\} ${700 * 1_048_576}$`, 'm'),
    );
    expect(text).toMatch(/^flota_model_load_seconds\{model="tiny"\} 1\.5$/m);
    expect(text).toMatch(/^flota_model_ttft_seconds_count\{model="echo"\} 1$/m);
    expect(text).toMatch(/^flota_model_tokens_per_second_count\{model="echo"\} 1$/m);
  });
});
