/**
 * Wire names of the REST API that are not JSON bodies: response headers and
 * the `code` of every error body (`{ error, code }`).
 */

/** Names the caller's session on a REST submission: its tasks share a fairness round and its events reach that session. */
export const SESSION_HEADER = 'x-flota-session';

/** A submission's own key: the same key always names the same task (POST /api/tasks). */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

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
