/**
 * The result cache: a completed answer is kept in the queue's store (so it
 * outlives the master) under a key of (tenant, model, prompt, messages,
 * params), for CACHE_TTL_S. A later identical request of the same tenant is
 * answered from it without a worker. The cache only ever speeds things up:
 * a slow or unreachable store, or an entry of the wrong shape, is a miss.
 *
 * A caller-supplied apiKey does not change the key: the answer depends on the
 * request, not on who pays for it, and entries never cross tenants. A request
 * that must reach a model sends `cache: false`.
 */
import { z } from 'zod';
import type { Logger } from '../../../common/logger.ts';
import { withTimeout } from '../../../common/timeout.ts';
import type { StoreKv } from '../store/types.ts';
import { type CacheKeyInput, cacheKey } from './cache-key.ts';

/** What the store keeps per answer; validated again when read back. */
export const cachedAnswerSchema = z.object({
  text: z.string(),
  usage: z
    .object({
      inputTokens: z.number().int().nonnegative(),
      outputTokens: z.number().int().nonnegative(),
      estimated: z.literal(true).optional(),
    })
    .optional(),
  /** When the answer was stored (Unix ms). */
  cachedAt: z.number().int().nonnegative(),
  /** The worker that produced it. */
  workerId: z.string().max(128).optional(),
});
export type CachedAnswer = z.infer<typeof cachedAnswerSchema>;

/** A lookup that takes longer counts as a miss: the submission goes on without it. */
export const CACHE_LOOKUP_WAIT_MS = 1_000;
/** Store keys of cache entries start with this (the kv facet is shared). */
export const CACHE_KV_PREFIX = 'cache:';

export interface ResultCacheDeps {
  kv: StoreKv;
  /** Entry lifetime; 0 turns the cache off. */
  ttlMs: number;
  log: Logger;
}

export class ResultCache {
  private readonly log: Logger;
  private counts = { hits: 0, misses: 0 };

  constructor(private readonly deps: ResultCacheDeps) {
    this.log = deps.log.child({ component: 'cache' });
    if (this.enabled) this.log.info({ ttlMs: deps.ttlMs }, 'result cache on');
  }

  get enabled(): boolean {
    return this.deps.ttlMs > 0;
  }

  /** Lookups of queued tasks so far, by outcome. */
  get hits(): number {
    return this.counts.hits;
  }
  get misses(): number {
    return this.counts.misses;
  }

  /** The stored answer for this request, or undefined (miss, cache off, store slow or away). */
  async find(input: CacheKeyInput): Promise<CachedAnswer | undefined> {
    if (!this.enabled) return undefined;
    const key = CACHE_KV_PREFIX + cacheKey(input);
    let raw: unknown;
    try {
      raw = await this.within(this.deps.kv.get(key), CACHE_LOOKUP_WAIT_MS);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cache lookup failed; treated as a miss');
      return undefined;
    }
    if (raw === undefined) return undefined;
    const parsed = cachedAnswerSchema.safeParse(raw);
    if (!parsed.success) {
      this.log.warn({ key }, 'cache entry ignored: not a cached answer');
      return undefined;
    }
    return parsed.data;
  }

  /** Counts the outcome of a lookup whose task was queued (a retried submission is not counted). */
  count(hit: boolean): void {
    if (!this.enabled) return;
    if (hit) this.counts.hits += 1;
    else this.counts.misses += 1;
  }

  /** Keeps a committed answer for the TTL. Never throws and never delays the caller. */
  remember(input: CacheKeyInput, answer: Omit<CachedAnswer, 'cachedAt'>): void {
    if (!this.enabled) return;
    const value: CachedAnswer = { ...answer, cachedAt: Date.now() };
    const key = CACHE_KV_PREFIX + cacheKey(input);
    this.deps.kv.set(key, value, this.deps.ttlMs).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message }, 'answer not cached: the store refused it');
    });
  }

  private within<T>(work: Promise<T>, ms: number): Promise<T> {
    return withTimeout(work, ms, () => new Error(`no answer in ${ms} ms`));
  }
}
