/**
 * The model registry with a real llama worker (a tiny GGUF the test writes):
 * its catalog reaches `GET /api/models`; a task loads the model, its
 * heartbeats say so, and the registry, `/v1/models` and the per-model
 * metrics follow.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { type ModelEntry, modelsResponseSchema } from '../../../proto/src/schemas/models.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { writeTinyGguf } from '../../helpers/tiny-gguf.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

let dir: string;
let modelBytes: number;
let redis: RedisServer;
let master: MasterHandle;
let worker: WorkerHandle;

const entry = async (name: string): Promise<ModelEntry | undefined> => {
  const { body } = await api(master, '/api/models');
  return modelsResponseSchema.parse(body).models.find((m) => m.name === name);
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-models-llama-'));
  modelBytes = await writeTinyGguf(join(dir, 'tiny-chat.gguf'), { chatTemplate: true, seed: 1 });
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url });
  worker = await startTestWorker(master, {
    WORKER_ID: 'models-llama-1',
    PROVIDER: 'llama',
    MODELS_DIR: dir,
    MODEL_CONTEXT_SIZE: '512',
    MODEL_THREADS: '1',
    WORKER_KIND: 'cpu',
    HEARTBEAT_MS: '200',
  });
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a llama worker in the model registry', () => {
  it('is listed from its catalog, and as loaded once a task has used the model', async () => {
    const listed = await waitFor(() => entry('tiny-chat'), { what: 'tiny-chat listed' });
    expect(listed).toMatchObject({
      providers: ['llama'],
      kinds: ['cpu'],
      local: true,
      workerIds: ['models-llama-1'],
      sizeBytes: modelBytes,
      contextLength: 512,
    });
    expect(listed.loadedIds).toEqual([]);

    const submitted = await api<{ id: string }>(master, '/api/tasks', {
      body: { model: 'tiny-chat', prompt: 'the cat sat', params: { maxTokens: 5, temperature: 0 } },
    });
    await waitFor(
      async () =>
        (await api<{ state: string }>(master, `/api/tasks/${submitted.body.id}`)).body.state ===
        'completed',
      { what: 'the task completed', timeoutMs: 30_000 },
    );
    const loaded = await waitFor(
      async () => {
        const now = await entry('tiny-chat');
        return now?.loadedIds.length === 1 ? now : undefined;
      },
      { what: 'tiny-chat loaded' },
    );
    expect(loaded).toMatchObject({ loaded: { cpu: 1, gpu: 0 }, loadedIds: ['models-llama-1'] });
    expect(loaded.memMb).toBeGreaterThan(0);
    expect(loaded.loadMs).toBeGreaterThanOrEqual(0);

    const v1 = await api<{ flota: { loadedIds: string[] } }>(master, '/v1/models/tiny-chat');
    expect(v1.body.flota.loadedIds).toEqual(['models-llama-1']);
    const metrics = await (await fetch(`${master.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^flota_model_workers\{model="tiny-chat",state="loaded"\} 1$/m);
    expect(metrics).toMatch(/^flota_model_memory_bytes\{model="tiny-chat"\} [1-9]/m);
    expect(metrics).toMatch(/^flota_model_tokens_per_second_count\{model="tiny-chat"\} 1$/m);
  });
});
