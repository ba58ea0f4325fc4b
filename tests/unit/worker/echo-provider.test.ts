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
    expect(result.usage).toEqual({ inputTokens: 3, outputTokens: 5 });
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
});
