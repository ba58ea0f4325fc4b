/**
 * The llama provider on real GGUF files run by node-llama-cpp: tiny models
 * written by the test (random weights, a small vocabulary), so generation at
 * temperature 0 is the same on every run and never ends early.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLlamaProvider,
  type LlamaProvider,
  type LlamaProviderOptions,
} from '../../../worker/src/providers/llama.ts';
import type { GenerateRequest, GenerateResult } from '../../../worker/src/providers/types.ts';
import { writeTinyGguf } from '../../helpers/tiny-gguf.ts';

const log = pino({ level: 'silent' });
let dir: string;
const sizes = new Map<string, number>();
const providers: LlamaProvider[] = [];

async function provider(overrides: Partial<LlamaProviderOptions> = {}): Promise<LlamaProvider> {
  const created = await createLlamaProvider({
    modelsDir: dir,
    models: ['tiny-chat', 'tiny-plain'],
    slots: 2,
    idleMs: 60_000,
    memoryMb: 1024,
    contextSize: 512,
    useGpu: false,
    threads: 1,
    log,
    ...overrides,
  });
  providers.push(created);
  return created;
}

function request(overrides: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    model: 'tiny-chat',
    prompt: 'hello there',
    params: { maxTokens: 8, temperature: 0 },
    signal: new AbortController().signal,
    ...overrides,
  };
}

async function generate(
  llama: LlamaProvider,
  overrides: Partial<GenerateRequest> = {},
): Promise<GenerateResult & { chunks: string[] }> {
  const chunks: string[] = [];
  const result = await llama.generate(request(overrides), (chunk) => chunks.push(chunk));
  return { ...result, chunks };
}

const words = (text: string) => text.trim().split(/\s+/);

let shared: LlamaProvider;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-llama-'));
  const models: Array<[string, Parameters<typeof writeTinyGguf>[1]]> = [
    ['tiny-chat', { chatTemplate: true, seed: 1 }],
    ['tiny-plain', { seed: 2 }],
    ['tiny-third', { chatTemplate: true, seed: 3 }],
  ];
  for (const [name, options] of models) {
    sizes.set(name, await writeTinyGguf(join(dir, `${name}.gguf`), { name, ...options }));
  }
  shared = await provider();
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('llama provider', () => {
  it('advertises each model with its size, quantisation and context length', () => {
    expect(shared.name).toBe('llama');
    expect(shared.continues).toBe(true);
    expect(shared.detectedKind).toBe('cpu');
    expect(shared.catalog()).toEqual([
      {
        name: 'tiny-chat',
        provider: 'llama',
        sizeBytes: sizes.get('tiny-chat'),
        quantization: 'F32',
        contextLength: 512,
      },
      {
        name: 'tiny-plain',
        provider: 'llama',
        sizeBytes: sizes.get('tiny-plain'),
        quantization: 'F32',
        contextLength: 512,
      },
    ]);
  });

  it('loads a model on its first task and keeps it for the next', async () => {
    const llama = await provider();
    expect(llama.loaded()).toEqual([]);
    const loaded = once(llama.pool, 'loaded');
    const before = Date.now();
    await generate(llama);
    const [event] = await loaded;
    expect(event).toMatchObject({ name: 'tiny-chat' });
    const [entry] = llama.loaded();
    expect(entry?.name).toBe('tiny-chat');
    expect(entry?.memMb).toBeGreaterThan(0);
    expect(entry?.loadMs).toBeGreaterThanOrEqual(0);
    expect(entry?.lastUsedAt).toBeGreaterThanOrEqual(before);
    let loads = 0;
    llama.pool.on('loaded', () => loads++);
    await generate(llama);
    expect(loads).toBe(0);
    expect(llama.loaded()).toHaveLength(1);
  });

  it('streams pieces that make up the answer, with token counts from the tokenizer', async () => {
    const result = await generate(shared);
    expect(result.chunks.length).toBe(8);
    expect(result.chunks.join('')).toBe(result.text);
    expect(words(result.text)).toHaveLength(8);
    expect(result.usage?.outputTokens).toBe(8);
    // The ChatML template around the prompt, as the model reads it.
    const lease = await shared.pool.acquire('tiny-chat', new AbortController().signal);
    const prompt = '<s><|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n';
    const expected = lease.model.model.tokenize(prompt, true).length;
    lease.release();
    expect(result.usage?.inputTokens).toBe(expected);
  });

  it('gives the same answer at temperature 0, and honours maxTokens', async () => {
    const first = await generate(shared);
    const second = await generate(shared);
    expect(second.text).toBe(first.text);
    const short = await generate(shared, { params: { temperature: 0, maxTokens: 3 } });
    expect(short.usage?.outputTokens).toBe(3);
    expect(first.text.startsWith(short.text)).toBe(true);
  });

  it('continues a half-streamed answer with only the new text', async () => {
    const full = await generate(shared);
    const prefix = words(full.text).slice(0, 3).join(' ');
    const rest = await generate(shared, {
      continueFrom: prefix,
      params: { temperature: 0, maxTokens: 5 },
    });
    expect(rest.chunks.join('')).toBe(rest.text);
    expect(rest.usage?.outputTokens).toBe(5);
    // The prefix is read as the start of the answer, so greedy decoding carries on where it was.
    expect(prefix + rest.text).toBe(full.text);
  });

  it('continues without a chat template too, keeping the space before the next word', async () => {
    const full = await generate(shared, { model: 'tiny-plain' });
    expect(words(full.text)).toHaveLength(8);
    const prefix = words(full.text).slice(0, 2).join(' ');
    const rest = await generate(shared, {
      model: 'tiny-plain',
      continueFrom: prefix,
      params: { temperature: 0, maxTokens: 4 },
    });
    expect(rest.text.startsWith(' ')).toBe(true);
    expect(words(rest.text)).toHaveLength(4);
    expect(rest.text).not.toContain(prefix);
  });

  it('reads the whole conversation', async () => {
    const alone = await generate(shared);
    const conversation = await generate(shared, {
      messages: [
        { role: 'system', content: 'answer briefly' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'the cat' },
        { role: 'user', content: 'hello there' },
      ],
    });
    expect(conversation.usage?.inputTokens).toBeGreaterThan(alone.usage?.inputTokens ?? 0);
    expect(words(conversation.text)).toHaveLength(8);
  });

  it('ends the answer before a stop sequence', async () => {
    const full = await generate(shared);
    // Not the first word: its token carries the space the answer's start drops.
    const [first, ...rest] = words(full.text);
    const stopWord = ` ${rest.find((word) => word !== first)}`;
    const stopped = await generate(shared, {
      params: { temperature: 0, maxTokens: 8, stop: [stopWord] },
    });
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stopWord)));
  });

  it('runs two tasks on one model at once', async () => {
    const [a, b] = await Promise.all([
      generate(shared),
      generate(shared, { prompt: 'the dog sat' }),
    ]);
    expect(words(a.text)).toHaveLength(8);
    expect(words(b.text)).toHaveLength(8);
  });

  it('stops when aborted and frees its sequence', async () => {
    const controller = new AbortController();
    const pending = shared.generate(
      request({ params: { temperature: 0, maxTokens: 400 }, signal: controller.signal }),
      () => controller.abort(),
    );
    await expect(pending).rejects.toMatchObject({ code: 'aborted' });
    // Both of the model's sequences are free again.
    const [a, b] = await Promise.all([generate(shared), generate(shared)]);
    expect(a.text).toBe(b.text);
  });

  it('unloads a model left idle', async () => {
    const llama = await provider({ idleMs: 50 });
    await generate(llama);
    const [event] = await once(llama.pool, 'unloaded');
    expect(event).toEqual({ name: 'tiny-chat', reason: 'idle' });
    expect(llama.loaded()).toEqual([]);
    const again = await generate(llama);
    expect(words(again.text)).toHaveLength(8);
  });

  it('unloads the least recently used model when the next does not fit', async () => {
    const probe = await provider({ models: ['tiny-chat'] });
    await generate(probe);
    const oneModelMb = probe.loaded()[0]?.memMb ?? 0;
    await probe.close();
    // Room for two of the three (equal) models.
    const llama = await provider({
      models: ['tiny-chat', 'tiny-plain', 'tiny-third'],
      memoryMb: oneModelMb * 2.5,
    });
    await generate(llama, { model: 'tiny-chat' });
    await generate(llama, { model: 'tiny-plain' });
    await generate(llama, { model: 'tiny-chat' });
    const unloaded = once(llama.pool, 'unloaded');
    await generate(llama, { model: 'tiny-third' });
    expect((await unloaded)[0]).toEqual({ name: 'tiny-plain', reason: 'memory' });
    expect(
      llama
        .loaded()
        .map((m) => m.name)
        .sort(),
    ).toEqual(['tiny-chat', 'tiny-third']);
  });

  it('fails the tasks of a file that is no model, and serves the others', async () => {
    await writeFile(join(dir, 'broken.gguf'), 'not a model');
    const llama = await provider({ models: ['tiny-chat', 'broken'] });
    expect(llama.catalog()[1]).toEqual({ name: 'broken', provider: 'llama', sizeBytes: 11 });
    await expect(generate(llama, { model: 'broken' })).rejects.toMatchObject({
      code: 'provider_error',
      message: expect.stringMatching(/^model broken could not be loaded: /),
    });
    expect(words((await generate(llama)).text)).toHaveLength(8);
  });

  it('refuses to start as a GPU worker when the runtime runs on the CPU', async () => {
    await expect(provider({ useGpu: false, requireGpu: true })).rejects.toThrow(
      /WORKER_KIND=gpu: node-llama-cpp found no GPU/,
    );
  });

  it('refuses a model name with no file', async () => {
    await expect(provider({ models: ['tiny-chat', 'missing'] })).rejects.toThrow(
      /MODELS: no \.gguf file .* for missing/,
    );
  });
});
