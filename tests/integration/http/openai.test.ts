/**
 * The OpenAI-compatible API against a real master (Redis store, echo worker
 * over the embedded broker and gRPC), driven by the official `openai` SDK and
 * by `curl -N`: answers whole and streamed, usage, the model list, flota's own
 * options, OpenAI's error shapes and codes, and abort = cancel.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { startTestMaster, startTestWorker } from '../master/support.ts';
import { raw } from './support.ts';

const run = promisify(execFile);
const TOKEN = 'alice-token-0123456789abcdef';
const PROMPT = 'tell me about leases and fencing tokens';
const ANSWER = `echo: ${PROMPT}`;

let redis: RedisServer;
let master: MasterHandle;
let limitedMaster: MasterHandle;
let worker: WorkerHandle;
let slowWorker: WorkerHandle;
let client: OpenAI;

const clientFor = (m: MasterHandle, apiKey = TOKEN) =>
  new OpenAI({ baseURL: `${m.httpUrl}/v1`, apiKey, maxRetries: 0, timeout: 20_000 });
const taskIdOf = (completionId: string) => completionId.replace(/^chatcmpl-/, '');
const taskState = async (m: MasterHandle, taskId: string) =>
  (await raw(m.httpUrl, 'GET', `/api/tasks/${taskId}`, { token: TOKEN })).body;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `alice:${TOKEN}`, RATE_LIMIT_RPM: '0' },
  });
  // Small chunks a few ms apart: a stream of many deltas.
  worker = await startTestWorker(master, {
    WORKER_ID: 'oa-w1',
    ECHO_CHUNK_SIZE: '4',
    ECHO_DELAY_MS: '2',
    CHUNK_COALESCE_MS: '0',
  });
  // A slow echo model, whose answers can be cut off.
  slowWorker = await startTestWorker(master, {
    WORKER_ID: 'oa-slow',
    MODELS: 'echo-slow',
    ECHO_CHUNK_SIZE: '2',
    ECHO_DELAY_MS: '200',
  });
  // A second master with a tiny rate limit.
  limitedMaster = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `alice:${TOKEN}`, RATE_LIMIT_RPM: '4' },
  });
  client = clientFor(master);
  await waitFor(async () => (await client.models.list()).data.length === 2, {
    what: 'both models listed',
  });
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await slowWorker?.close();
  await master?.close();
  await limitedMaster?.close();
  await redis?.stop();
});

describe('POST /v1/chat/completions', () => {
  it('answers whole, with usage and where it ran, as a flota task of the caller’s tenant', async () => {
    const answer = await client.chat.completions.create({
      model: 'echo',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'an earlier question' },
        { role: 'assistant', content: 'an earlier answer' },
        { role: 'user', content: PROMPT },
      ],
      max_tokens: 100,
      temperature: 0.2,
    });
    expect(answer).toMatchObject({
      object: 'chat.completion',
      model: 'echo',
      choices: [
        { index: 0, finish_reason: 'stop', message: { role: 'assistant', content: ANSWER } },
      ],
    });
    expect(answer.usage?.completion_tokens).toBeGreaterThan(0);
    expect(answer.usage?.total_tokens).toBe(
      (answer.usage?.prompt_tokens ?? 0) + (answer.usage?.completion_tokens ?? 0),
    );
    const task = await taskState(master, taskIdOf(answer.id));
    expect(task).toMatchObject({ state: 'completed', result: ANSWER, workerId: 'oa-w1' });
    // Streamed by the worker: the master knows when the first piece came.
    const timings = task.timings as { ttftMs?: number; queueMs?: number; totalMs?: number };
    expect(timings.ttftMs).toBeGreaterThanOrEqual(timings.queueMs ?? 0);
    expect(timings.ttftMs).toBeLessThanOrEqual(timings.totalMs ?? 0);
    // echo's counts are its own estimate (about four characters a token), and say so.
    expect(answer.usage).toMatchObject({ estimated: true });
    expect(task.usage).toEqual({
      inputTokens: answer.usage?.prompt_tokens,
      outputTokens: answer.usage?.completion_tokens,
      estimated: true,
    });
  });

  it('ends the answer before a stop sequence', async () => {
    const answer = await client.chat.completions.create({
      model: 'echo',
      messages: [{ role: 'user', content: PROMPT }],
      stop: ['fencing', 'never'],
    });
    expect(answer.choices[0]?.message.content).toBe('echo: tell me about leases and ');
  });

  it('streams deltas that add up to the answer, then a stop, the usage and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'echo',
      messages: [{ role: 'user', content: PROMPT }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const deltas = chunks.flatMap((c) => c.choices.map((choice) => choice.delta.content ?? ''));
    expect(deltas.join('')).toBe(ANSWER);
    expect(deltas.filter((d) => d !== '').length).toBeGreaterThan(3);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('speaks plain server-sent events to curl -N', async () => {
    const body = JSON.stringify({
      model: 'echo',
      stream: true,
      messages: [{ role: 'user', content: 'curl me' }],
    });
    const { stdout } = await run('curl', [
      '-sN',
      '-H',
      `authorization: Bearer ${TOKEN}`,
      '-H',
      'content-type: application/json',
      '-d',
      body,
      `${master.httpUrl}/v1/chat/completions`,
    ]);
    const events = stdout.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const text = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice('data: '.length)))
      .map((c) => c.choices[0]?.delta?.content ?? '')
      .join('');
    expect(text).toBe('echo: curl me');
  });

  it("takes flota's options from the body's flota field over the x-flota-* headers", async () => {
    const answer = await client.chat.completions.create(
      {
        model: 'echo',
        messages: [{ role: 'user', content: 'with options' }],
        // @ts-expect-error flota's own field, beside OpenAI's
        flota: { priority: 7, cache: false },
      },
      { headers: { 'x-flota-priority': '3', 'x-flota-timeout-ms': '60000' } },
    );
    const task = await taskState(master, taskIdOf(answer.id));
    expect(task).toMatchObject({ state: 'completed', priority: 7 });
    const viaHeaders = await client.chat.completions.create(
      { model: 'echo', messages: [{ role: 'user', content: 'headers only' }] },
      { headers: { 'x-flota-priority': '3' } },
    );
    expect(await taskState(master, taskIdOf(viaHeaders.id))).toMatchObject({ priority: 3 });
  });

  it('a client that goes away cancels its task', async () => {
    const abort = new AbortController();
    const stream = await client.chat.completions.create(
      {
        model: 'echo-slow',
        messages: [{ role: 'user', content: 'a long answer to cut off' }],
        stream: true,
      },
      { signal: abort.signal },
    );
    let id = '';
    for await (const chunk of stream) {
      id = chunk.id;
      if (chunk.choices[0]?.delta.content) {
        abort.abort();
        break;
      }
    }
    await waitFor(async () => (await taskState(master, taskIdOf(id))).state === 'cancelled', {
      what: 'the task cancelled',
    });
  });
});

describe('errors in OpenAI’s shape', () => {
  it('401 for a bad key', async () => {
    const error = await clientFor(master, 'not-a-token-0123456789')
      .chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error).toMatchObject({
      status: 401,
      code: 'invalid_api_key',
      type: 'invalid_request_error',
    });
  });

  it('404 for a model nobody serves', async () => {
    const error = await client.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('400 naming the field for a bad request, and for what flota does not do', async () => {
    const hot = await client.chat.completions
      .create({ model: 'echo', temperature: 5, messages: [{ role: 'user', content: 'hi' }] })
      .catch((err: unknown) => err);
    expect(hot).toBeInstanceOf(OpenAI.BadRequestError);
    expect(hot).toMatchObject({ status: 400, param: 'temperature', type: 'invalid_request_error' });
    const tools = await client.chat.completions
      .create({
        model: 'echo',
        messages: [{ role: 'user', content: 'hi' }],
        tools: [{ type: 'function', function: { name: 'f' } }],
      })
      .catch((err: unknown) => err);
    expect(tools).toMatchObject({ status: 400, message: expect.stringContaining('tools') });
    const lastNotUser = await client.chat.completions
      .create({ model: 'echo', messages: [{ role: 'assistant', content: 'hi' }] })
      .catch((err: unknown) => err);
    expect(lastNotUser).toMatchObject({ status: 400, param: 'messages' });
  });

  it('429 with Retry-After over the rate limit', async () => {
    const limited = clientFor(limitedMaster);
    let error: unknown;
    for (let i = 0; i < 10 && !error; i += 1) {
      error = await limited.models.list().then(
        () => undefined,
        (err: unknown) => err,
      );
    }
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'requests' });
    expect(
      Number((error as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')),
    ).toBeGreaterThan(0);
  });
});

describe('GET /v1/models', () => {
  it('lists what online workers serve now, with how many CPU and GPU workers', async () => {
    const models = await client.models.list();
    expect(models.data).toEqual([
      expect.objectContaining({
        id: 'echo',
        object: 'model',
        owned_by: 'flota',
        flota: expect.objectContaining({
          workers: { cpu: 1, gpu: 0 },
          workerIds: ['oa-w1'],
          local: false,
        }),
      }),
      expect.objectContaining({
        id: 'echo-slow',
        flota: expect.objectContaining({ workers: { cpu: 1, gpu: 0 }, workerIds: ['oa-slow'] }),
      }),
    ]);
    expect(await client.models.retrieve('echo')).toMatchObject({ id: 'echo' });
    await expect(client.models.retrieve('nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});
