/**
 * Request limits per tenant (per client address when no API tokens are set),
 * counted in the queue's own store so a limit holds across restarts and
 * across several masters of one installation: Redis keys under the store's
 * namespace, or a table in the store's PostgreSQL schema. The counting is
 * rate-limiter-flexible's (a fixed one-minute window per key).
 *
 * When the store does not answer, each master counts in its own memory until
 * it is back: a store outage neither opens the API to floods nor closes it.
 */
import type { RequestHandler, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import type { Logger } from '../../../common/logger.ts';
import { RATE_LIMIT_HEADERS } from '../../../proto/src/http-api.ts';
import { RateLimitedError } from './errors.ts';

/** Where the counts live; the queue store hands out its own connection (`store.limiterBackend()`). */
export type LimiterBackend =
  | { kind: 'redis'; client: Redis }
  | { kind: 'postgres'; pool: Pool }
  | { kind: 'memory' };

/** The answer for one request: allowed or not, and what the X-RateLimit-* headers say. */
export interface RateLimitVerdict {
  allowed: boolean;
  /** Requests per window (RATE_LIMIT_RPM). */
  limit: number;
  /** Requests left in this window. */
  remaining: number;
  /** Milliseconds until the window starts afresh. */
  resetMs: number;
  /** Whole seconds to wait before the next request can pass (0 while allowed). */
  retryAfterS: number;
}

export interface RateLimiter {
  /** False with RATE_LIMIT_RPM=0: every request passes and no header is sent. */
  readonly enabled: boolean;
  /** Counts `points` requests (1 unless said) against `key`. */
  consume(key: string, points?: number): Promise<RateLimitVerdict>;
  close(): Promise<void>;
}

export interface RateLimiterOptions {
  /** Requests per minute per key; 0 turns limits off. */
  rpm: number;
  backend: LimiterBackend;
  /** The store's namespace (Redis key prefix, PostgreSQL schema). */
  namespace: string;
  log?: Logger;
}

/** The counting window: RATE_LIMIT_RPM is per minute. */
export const RATE_WINDOW_S = 60;
/** PostgreSQL table, in the store's schema. */
export const RATE_LIMIT_TABLE = 'rate_limits';
/** After a failed table creation, how long before the next request tries again. */
const TABLE_RETRY_MS = 5_000;

const OFF: RateLimitVerdict = {
  allowed: true,
  limit: 0,
  remaining: 0,
  resetMs: 0,
  retryAfterS: 0,
};

function verdictOf(res: RateLimiterRes, limit: number, allowed: boolean): RateLimitVerdict {
  const resetMs = Math.max(0, res.msBeforeNext);
  return {
    allowed,
    limit,
    remaining: Math.max(0, res.remainingPoints),
    resetMs,
    retryAfterS: allowed ? 0 : Math.max(1, Math.ceil(resetMs / 1000)),
  };
}

/** The PostgreSQL limiter, once its table exists; a failed creation is retried later. */
function postgresLimiter(
  pool: Pool,
  base: { points: number; duration: number; insuranceLimiter: RateLimiterMemory },
  namespace: string,
  log: Logger | undefined,
): () => Promise<RateLimiterAbstract | undefined> {
  let ready: Promise<RateLimiterAbstract> | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;
  return async () => {
    if (!ready) {
      if (Date.now() - failedAt < TABLE_RETRY_MS) return undefined;
      ready = new Promise<RateLimiterAbstract>((resolve, reject) => {
        const limiter: RateLimiterPostgres = new RateLimiterPostgres(
          {
            ...base,
            storeClient: pool,
            storeType: 'pool',
            schemaName: namespace,
            tableName: RATE_LIMIT_TABLE,
            keyPrefix: RATE_LIMIT_TABLE,
          },
          (err) => (err ? reject(err) : resolve(limiter)),
        );
      });
    }
    try {
      return await ready;
    } catch (err) {
      ready = undefined;
      failedAt = Date.now();
      log?.warn({ err }, 'rate limit table not ready: counting in memory for now');
      return undefined;
    }
  };
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { rpm, backend, namespace, log } = options;
  if (rpm === 0) {
    return { enabled: false, consume: async () => OFF, close: async () => undefined };
  }
  const base = { points: rpm, duration: RATE_WINDOW_S };
  // Counts on this master alone while the store is unreachable.
  const insuranceLimiter = new RateLimiterMemory(base);
  let limiterOf: () => Promise<RateLimiterAbstract | undefined>;
  switch (backend.kind) {
    case 'redis': {
      const limiter = new RateLimiterRedis({
        ...base,
        insuranceLimiter,
        storeClient: backend.client,
        keyPrefix: `${namespace}:rate`,
        // A Redis that is down answers at once (the memory count) instead of queueing.
        rejectIfRedisNotReady: true,
      });
      limiterOf = async () => limiter;
      break;
    }
    case 'postgres':
      limiterOf = postgresLimiter(backend.pool, { ...base, insuranceLimiter }, namespace, log);
      break;
    case 'memory': {
      const limiter = insuranceLimiter;
      limiterOf = async () => limiter;
      break;
    }
    default: {
      const unknown: never = backend;
      throw new Error(`unknown rate limit backend ${JSON.stringify(unknown)}`);
    }
  }

  return {
    enabled: true,
    async consume(key, points = 1) {
      const limiter = (await limiterOf()) ?? insuranceLimiter;
      try {
        return verdictOf(await limiter.consume(key, points), rpm, true);
      } catch (outcome) {
        if (outcome instanceof RateLimiterRes) return verdictOf(outcome, rpm, false);
        // Neither the store nor the memory count answered: let the request through.
        log?.warn({ err: outcome }, 'rate limit not counted');
        return { ...OFF, limit: rpm, remaining: rpm };
      }
    },
    // The connections belong to the store, which closes them.
    close: async () => undefined,
  };
}

/**
 * What a request counts against: its tenant when API tokens are on (every
 * token of a tenant shares one budget), else the client's address.
 */
export function rateKeyOf(tokensOn: boolean, address: string | undefined, tenant?: string): string {
  return tokensOn && tenant !== undefined ? `tenant:${tenant}` : `addr:${address ?? 'unknown'}`;
}

/** Sets X-RateLimit-Limit / -Remaining / -Reset (seconds until the window starts afresh). */
export function setRateLimitHeaders(res: Response, verdict: RateLimitVerdict): void {
  res.setHeader(RATE_LIMIT_HEADERS.limit, String(verdict.limit));
  res.setHeader(RATE_LIMIT_HEADERS.remaining, String(verdict.remaining));
  res.setHeader(RATE_LIMIT_HEADERS.reset, String(Math.ceil(verdict.resetMs / 1000)));
}

/**
 * Express middleware: counts the request against `keyOf(req, res)` and sets
 * the headers on every answer; over the limit it answers 429 with
 * Retry-After and `{ error, code: 'rate_limited' }` (through the error handler).
 */
export function limitRequests(
  limiter: RateLimiter,
  keyOf: (req: Parameters<RequestHandler>[0], res: Response) => string,
): RequestHandler {
  return (req, res, next) => {
    if (!limiter.enabled) return next();
    limiter.consume(keyOf(req, res)).then((verdict) => {
      setRateLimitHeaders(res, verdict);
      if (verdict.allowed) return next();
      next(new RateLimitedError(verdict.retryAfterS, verdict.limit));
    }, next);
  };
}
