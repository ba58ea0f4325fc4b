import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEchoProvider, echoAnswer } from '../../../worker/src/providers/echo.ts';

describe('echo provider', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers deterministically in chunk-size pieces, waiting before each', async () => {
    const provider = createEchoProvider({ delayMs: 100, chunkSize: 5 });
    const chunks: string[] = [];
    const done = provider.generate(
      { model: 'echo', prompt: 'hello world', params: {}, signal: new AbortController().signal },
      (text) => chunks.push(text),
    );
    // "echo: hello world" is 17 characters → 4 chunks.
    await vi.advanceTimersByTimeAsync(99);
    expect(chunks).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(chunks).toEqual(['echo:']);
    await vi.advanceTimersByTimeAsync(300);
    const result = await done;
    expect(chunks).toEqual(['echo:', ' hell', 'o wor', 'ld']);
    expect(result.text).toBe('echo: hello world');
    expect(result.usage).toEqual({ inputTokens: 3, outputTokens: 5, estimated: true });
  });

  it('stops at once when aborted mid-way', async () => {
    const provider = createEchoProvider({ delayMs: 1_000, chunkSize: 2 });
    const controller = new AbortController();
    const chunks: string[] = [];
    const done = provider.generate(
      { model: 'echo', prompt: 'abcdef', params: {}, signal: controller.signal },
      (text) => chunks.push(text),
    );
    const outcome = done.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_000);
    controller.abort();
    const error = await outcome;
    expect(chunks).toEqual(['ec']);
    expect(error).toMatchObject({ code: 'aborted' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("paces chunks from the attempt's start: a late one goes at once, none before it is due", async () => {
    const provider = createEchoProvider({ delayMs: 10, chunkSize: 2 });
    const start = Date.now();
    const seen: Array<[string, number]> = [];
    // The attempt started 25 ms ago: chunks 0 and 1 (due at +10, +20) are late.
    const done = provider.generate(
      {
        model: 'echo',
        prompt: 'abcd',
        params: {},
        signal: new AbortController().signal,
        startedAt: start - 25,
      },
      (text) => seen.push([text, Date.now() - start]),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([
      ['ec', 0],
      ['ho', 0],
    ]);
    await vi.advanceTimersByTimeAsync(4);
    expect(seen).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen.at(-1)).toEqual([': ', 5]);
    await vi.advanceTimersByTimeAsync(20);
    await done;
    expect(seen.slice(3)).toEqual([
      ['ab', 15],
      ['cd', 25],
    ]);
  });

  it('serves many tasks at once on one timer', async () => {
    const provider = createEchoProvider({ delayMs: 5, chunkSize: 4 });
    // Each task its own signal, as the task runner gives each attempt.
    const tasks = Array.from({ length: 50 }, (_, i) => {
      const signal = new AbortController().signal;
      return provider.generate(
        { model: 'echo', prompt: `task ${i}`, params: {}, signal },
        () => {},
      );
    });
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect((await Promise.all(tasks)).map((r) => r.text)).toEqual(
      Array.from({ length: 50 }, (_, i) => `echo: task ${i}`),
    );
    expect(vi.getTimerCount()).toBe(0);
  });

  it('falls back to the last user message when the prompt is empty', () => {
    expect(
      echoAnswer({
        prompt: '',
        messages: [
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: 'second' },
        ],
      }),
    ).toBe('echo: second');
  });

  it('ends before the first stop sequence, as a model does', () => {
    const ask = (stop?: string[]) =>
      echoAnswer({ prompt: 'one. two. END three', params: { stop } });
    expect(ask(['END', 'two'])).toBe('echo: one. ');
    expect(ask(['nowhere'])).toBe('echo: one. two. END three');
    expect(ask()).toBe('echo: one. two. END three');
  });
});
