import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRateLimiter, rateKeyOf } from '../../../master/src/http/rate-limit.ts';

describe('createRateLimiter (memory)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('allows rpm requests a minute per key, then says how long to wait', async () => {
    const limiter = createRateLimiter({ rpm: 3, backend: { kind: 'memory' }, namespace: 't' });
    expect(limiter.enabled).toBe(true);
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limiter.consume('tenant:acme'));
    expect(verdicts.map((v) => [v.allowed, v.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(verdicts[3]).toMatchObject({ limit: 3, retryAfterS: 60 });
    expect(verdicts[0]?.retryAfterS).toBe(0);
    expect((await limiter.consume('tenant:globex')).allowed).toBe(true);

    await vi.advanceTimersByTimeAsync(30_000);
    const later = await limiter.consume('tenant:acme');
    expect(later.allowed).toBe(false);
    expect(later.retryAfterS).toBe(30);

    await vi.advanceTimersByTimeAsync(30_001);
    expect(await limiter.consume('tenant:acme')).toMatchObject({ allowed: true, remaining: 2 });
    await limiter.close();
  });

  it('is off with rpm 0: everything passes', async () => {
    const limiter = createRateLimiter({ rpm: 0, backend: { kind: 'memory' }, namespace: 't' });
    expect(limiter.enabled).toBe(false);
    for (let i = 0; i < 100; i++) expect((await limiter.consume('k')).allowed).toBe(true);
  });
});

describe('rateKeyOf', () => {
  it('counts per tenant with tokens, per address without', () => {
    expect(rateKeyOf(true, '10.0.0.1', 'acme')).toBe('tenant:acme');
    expect(rateKeyOf(true, '10.0.0.1', undefined)).toBe('addr:10.0.0.1');
    expect(rateKeyOf(false, '127.0.0.1', 'default')).toBe('addr:127.0.0.1');
  });
});
