import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../common/errors.ts';
import { loadWorkerConfig } from '../../../worker/src/config.ts';
import { createEchoProvider, echoChunkDelay } from '../../../worker/src/providers/echo.ts';

describe('echoChunkDelay', () => {
  it('is the plain delay without jitter, whatever the draw', () => {
    expect(echoChunkDelay(25, 0, () => 0.9)).toBe(25);
  });

  it('adds a uniform 0..jitter, bounds included', () => {
    expect(echoChunkDelay(10, 100, () => 0)).toBe(10);
    expect(echoChunkDelay(10, 100, () => 0.5)).toBe(60);
    expect(echoChunkDelay(10, 100, () => 0.999_999)).toBe(110);
    // A misbehaving source never leaves the range.
    expect(echoChunkDelay(10, 100, () => 1)).toBe(110);
    expect(echoChunkDelay(10, 100, () => -3)).toBe(10);
  });

  it('spreads draws over the whole range with Math.random', () => {
    const draws = Array.from({ length: 2_000 }, () => echoChunkDelay(5, 20));
    expect(Math.min(...draws)).toBe(5);
    expect(Math.max(...draws)).toBe(25);
    expect(new Set(draws).size).toBe(21);
  });
});

describe('echo provider with jitter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('draws once per task and waits delay + draw before every chunk', async () => {
    const draws = [0.5, 0];
    const provider = createEchoProvider({
      delayMs: 100,
      jitterMs: 40,
      chunkSize: 5,
      random: () => draws.shift() ?? 0,
    });
    const signal = new AbortController().signal;
    const slow: string[] = [];
    // "echo: hello world": 17 characters → 4 chunks, 120 ms each (100 + 0.5 × 41 → 20).
    const first = provider.generate(
      { model: 'echo', prompt: 'hello world', params: {}, signal },
      (t) => slow.push(t),
    );
    await vi.advanceTimersByTimeAsync(119);
    expect(slow).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(slow).toEqual(['echo:']);
    await vi.advanceTimersByTimeAsync(359);
    expect(slow).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect((await first).text).toBe('echo: hello world');

    // The next task draws again (0 → no extra wait): 100 ms per chunk.
    const fast: string[] = [];
    const second = provider.generate({ model: 'echo', prompt: 'hi', params: {}, signal }, (t) =>
      fast.push(t),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(fast).toEqual(['echo:']);
    await vi.advanceTimersByTimeAsync(100);
    expect(fast).toEqual(['echo:', ' hi']);
    expect((await second).text).toBe('echo: hi');
  });
});

describe('ECHO_DELAY_JITTER_MS', () => {
  it('defaults to 0 and leaves ECHO_DELAY_MS as it was', () => {
    const config = loadWorkerConfig({ ECHO_DELAY_MS: '25' });
    expect(config.echoDelayMs).toBe(25);
    expect(config.echoDelayJitterMs).toBe(0);
  });

  it('is read as whole milliseconds', () => {
    expect(loadWorkerConfig({ ECHO_DELAY_JITTER_MS: '150' }).echoDelayJitterMs).toBe(150);
  });

  it.each(['-1', '2.5', 'lots'])('rejects %j, naming the variable', (value) => {
    expect(() => loadWorkerConfig({ ECHO_DELAY_JITTER_MS: value })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ECHO_DELAY_JITTER_MS: value })).toThrow(
      /ECHO_DELAY_JITTER_MS:/,
    );
  });
});
