/** ResultCache's own rules; the kv it uses is tested on every store in the store contract. */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cacheKey } from '../../../master/src/cache/cache-key.ts';
import {
  CACHE_KV_PREFIX,
  CACHE_LOOKUP_WAIT_MS,
  ResultCache,
} from '../../../master/src/cache/result-cache.ts';
import type { StoreKv } from '../../../master/src/store/types.ts';

const log = pino({ level: 'silent' });
const request = { tenant: 'acme', model: 'echo', prompt: 'hi' };

/** A kv kept in a Map, recording what it was asked (TTLs are the store's business). */
function mapKv() {
  const entries = new Map<string, { value: unknown; ttlMs: number }>();
  const kv: StoreKv = {
    get: async (key) => entries.get(key)?.value,
    set: async (key, value, ttlMs) => {
      entries.set(key, { value: JSON.parse(JSON.stringify(value)), ttlMs });
    },
  };
  return { kv, entries };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ResultCache', () => {
  it('keeps an answer under the request key for the TTL and finds it again', async () => {
    const { kv, entries } = mapKv();
    const cache = new ResultCache({ kv, ttlMs: 60_000, log });
    expect(await cache.find(request)).toBeUndefined();
    cache.remember(request, { text: 'echo: hi', workerId: 'w-1' });
    const key = CACHE_KV_PREFIX + cacheKey(request);
    await vi.waitFor(() => expect(entries.has(key)).toBe(true));
    expect(entries.get(key)?.ttlMs).toBe(60_000);
    const found = await cache.find(request);
    expect(found).toMatchObject({ text: 'echo: hi', workerId: 'w-1' });
    expect(found?.cachedAt).toBeGreaterThan(0);
    expect(await cache.find({ ...request, tenant: 'globex' })).toBeUndefined();
  });

  it('does nothing while the TTL is 0', async () => {
    const kv: StoreKv = {
      get: vi.fn(async () => ({ text: 'never', cachedAt: 1 })),
      set: vi.fn(async () => undefined),
    };
    const cache = new ResultCache({ kv, ttlMs: 0, log });
    expect(cache.enabled).toBe(false);
    expect(await cache.find(request)).toBeUndefined();
    cache.remember(request, { text: 'x' });
    cache.count(true);
    expect(kv.get).not.toHaveBeenCalled();
    expect(kv.set).not.toHaveBeenCalled();
    expect(cache.hits).toBe(0);
  });

  it('treats an entry of the wrong shape as a miss', async () => {
    const { kv, entries } = mapKv();
    entries.set(CACHE_KV_PREFIX + cacheKey(request), { value: { text: 42 }, ttlMs: 1 });
    const cache = new ResultCache({ kv, ttlMs: 60_000, log });
    expect(await cache.find(request)).toBeUndefined();
  });

  it('treats a failing or slow store as a miss, and a failed write as nothing', async () => {
    const failing: StoreKv = {
      get: async () => {
        throw new Error('the Redis store is not connected');
      },
      set: async () => {
        throw new Error('the Redis store is not connected');
      },
    };
    const down = new ResultCache({ kv: failing, ttlMs: 60_000, log });
    expect(await down.find(request)).toBeUndefined();
    expect(() => down.remember(request, { text: 'x' })).not.toThrow();

    vi.useFakeTimers();
    const hanging: StoreKv = {
      get: () => new Promise(() => undefined),
      set: async () => undefined,
    };
    const slow = new ResultCache({ kv: hanging, ttlMs: 60_000, log });
    const lookup = slow.find(request);
    await vi.advanceTimersByTimeAsync(CACHE_LOOKUP_WAIT_MS);
    await expect(lookup).resolves.toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('counts hits and misses', () => {
    const cache = new ResultCache({ kv: mapKv().kv, ttlMs: 1_000, log });
    cache.count(true);
    cache.count(false);
    cache.count(false);
    expect([cache.hits, cache.misses]).toEqual([1, 2]);
  });
});
