/**
 * Wire names of the REST API that are not JSON bodies: response headers and
 * the `code` of every error body (`{ error, code }`).
 */
import { z } from 'zod';

/** Names the caller's session on a REST submission: its tasks share a fairness round and its events reach that session. */
export const SESSION_HEADER = 'x-flota-session';

/** A submission's own key: the same key always names the same task (POST /api/tasks). */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** A retried POST with the same key names the same task instead of adding another. */
export const idempotencyKeySchema = z.string().min(1).max(128);

/** Sent with every /api answer while RATE_LIMIT_RPM > 0. Reset: seconds until the window restarts. */
export const RATE_LIMIT_HEADERS = {
  limit: 'X-RateLimit-Limit',
  remaining: 'X-RateLimit-Remaining',
  reset: 'X-RateLimit-Reset',
} as const;

/** The `code` of an error answer (REST body, Socket.IO ack), by what the client should do. */
export const API_ERROR_CODES = {
  /** 429: too many requests this minute; wait Retry-After seconds (`retryAfterS` in an ack). */
  rateLimited: 'rate_limited',
  /** 429: the tenant has MAX_QUEUED_PER_TENANT tasks queued or running; wait for some to end. */
  queueFull: 'queue_full',
  /** 400: no worker serves or has served that model; the body lists the known ones. */
  unknownModel: 'unknown_model',
  /** 403: the token is valid but its role may not do this (admin routes). */
  forbidden: 'forbidden',
  /** 403: a browser page from another origin, not listed in CORS_ORIGINS. */
  originRefused: 'origin_refused',
  /** 401: no token or an unknown one. */
  unauthorized: 'unauthorized',
  /** 409: the worker is offline: it cannot take a command. */
  workerOffline: 'worker_offline',
  /** 422: the worker refused the command (e.g. a model its provider cannot serve); `error` says why. */
  workerRefused: 'worker_refused',
  /** 504: the worker did not acknowledge the command in time; what the master could do is done. */
  notAcknowledged: 'not_acknowledged',
} as const;

/**
 * Every `/api` error answer: a message a person can act on and a code a
 * program can branch on (API_ERROR_CODES, or `bad_request`, `not_found`,
 * `conflict`, `too_large`, `unsupported_media_type`, `unavailable`,
 * `internal`), plus the fields some codes add.
 */
export const apiErrorSchema = z.object({
  error: z.string(),
  code: z.string(),
  /** `unknown_model`: the models workers serve or have served. */
  models: z.array(z.string()).optional(),
  /** `rate_limited`: seconds until a retry may pass (also the Retry-After header). */
  retryAfterS: z.number().int().nonnegative().optional(),
});
export type ApiError = z.infer<typeof apiErrorSchema>;

/** Where the master serves the OpenAPI 3.1 document of /api and /v1 (proto/src/openapi.ts). */
export const OPENAPI_PATH = '/api/openapi.json';
