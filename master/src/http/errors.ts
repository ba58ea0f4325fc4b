import type { ErrorRequestHandler } from 'express';
import type { z } from 'zod';
import { FlotaError, ValidationError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import { API_ERROR_CODES, type ApiError } from '../../../proto/src/http-api.ts';
import { UnknownModelError } from '../tasks/task-errors.ts';

const STATUS_BY_CODE: Record<string, number> = {
  bad_request: 400,
  [API_ERROR_CODES.unknownModel]: 400,
  [API_ERROR_CODES.unauthorized]: 401,
  [API_ERROR_CODES.forbidden]: 403,
  [API_ERROR_CODES.originRefused]: 403,
  not_found: 404,
  conflict: 409,
  [API_ERROR_CODES.workerOffline]: 409,
  [API_ERROR_CODES.workerRefused]: 422,
  [API_ERROR_CODES.notAcknowledged]: 504,
  [API_ERROR_CODES.rateLimited]: 429,
  [API_ERROR_CODES.queueFull]: 429,
  unavailable: 503,
};

/**
 * What a request brought (body, query, a path parameter), parsed with its
 * schema, or a 400 that says what is wrong (`what: reason` when named).
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what?: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const reason = formatZodError(parsed.error);
    throw new ValidationError(what ? `${what}: ${reason}` : reason);
  }
  return parsed.data;
}

/** The token is valid, but its role may not do this (403). */
export class ForbiddenError extends FlotaError {
  constructor(message: string) {
    super(API_ERROR_CODES.forbidden, message);
  }
}

/** Too many requests in this window (429); the client may retry after `retryAfterS`. */
export class RateLimitedError extends FlotaError {
  constructor(
    readonly retryAfterS: number,
    readonly limit: number,
  ) {
    super(
      API_ERROR_CODES.rateLimited,
      `too many requests: the limit is ${limit} a minute (RATE_LIMIT_RPM); retry in ${retryAfterS} s`,
    );
  }
}

/** Fields an error adds to its JSON body besides `error` and `code`. */
function extraFields(err: FlotaError): Record<string, unknown> {
  if (err instanceof UnknownModelError) return { models: err.models };
  if (err instanceof RateLimitedError) return { retryAfterS: err.retryAfterS };
  return {};
}

/** The HTTP status a flota error answers with. */
export function statusOf(err: FlotaError): number {
  return STATUS_BY_CODE[err.code] ?? 500;
}

/**
 * The `/api` error body of a failure: a flota error's message, code and extra
 * fields; anything else is an internal error, its details kept out.
 */
export function errorBodyOf(err: unknown): ApiError {
  if (err instanceof FlotaError) return { error: err.message, code: err.code, ...extraFields(err) };
  return { error: 'internal error', code: 'internal' };
}

/** What body-parser (express.json) reports, by its error `type`. */
interface BodyError {
  type?: string;
  status?: number;
  expose?: boolean;
  message?: string;
  length?: number;
  limit?: number;
  charset?: string;
  encoding?: string;
}

const describeBytes = (n: number) =>
  n >= 1_048_576 ? `${(n / 1_048_576).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;

/** A readable `{ status, error, code }` for a request body the parser refused, else undefined. */
function bodyFailure(err: BodyError): { status: number; error: string; code: string } | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return { status: 400, error: 'request body is not valid JSON', code: 'bad_request' };
    case 'entity.too.large': {
      const limit = err.limit ? ` (limit ${describeBytes(err.limit)})` : '';
      const got = err.length ? `: ${describeBytes(err.length)}` : '';
      return { status: 413, error: `request body is too large${got}${limit}`, code: 'too_large' };
    }
    case 'charset.unsupported':
      return {
        status: 415,
        error: `unsupported charset ${JSON.stringify(err.charset ?? '')}: send UTF-8 JSON`,
        code: 'unsupported_media_type',
      };
    case 'encoding.unsupported':
      return {
        status: 415,
        error: `unsupported content encoding ${JSON.stringify(err.encoding ?? '')}`,
        code: 'unsupported_media_type',
      };
    case 'request.aborted':
      return { status: 400, error: 'request body was cut off', code: 'bad_request' };
    case 'request.size.invalid':
      return {
        status: 400,
        error: 'request body length does not match Content-Length',
        code: 'bad_request',
      };
    default:
      break;
  }
  // Any other client error the HTTP stack marks as safe to show (http-errors `expose`).
  if (err.expose && err.status && err.status >= 400 && err.status < 500 && err.message) {
    return { status: err.status, error: err.message, code: 'bad_request' };
  }
  return undefined;
}

/** Every error leaves as JSON `{ error, code }` with a message a person can act on. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const body = bodyFailure((err ?? {}) as BodyError);
    if (body) {
      log.warn({ path: req.path, status: body.status, reason: body.error }, 'request refused');
      if (!res.headersSent) res.status(body.status).json({ error: body.error, code: body.code });
      return;
    }
    if (err instanceof FlotaError) {
      const status = statusOf(err);
      if (status < 500) {
        const level = status === 404 ? 'debug' : 'warn';
        log[level]({ path: req.path, status, reason: err.message }, 'request refused');
      }
      if (res.headersSent) return;
      if (status === 503) res.setHeader('Retry-After', '2');
      if (err instanceof RateLimitedError) res.setHeader('Retry-After', String(err.retryAfterS));
      res.status(status).json(errorBodyOf(err));
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    if (!res.headersSent) res.status(500).json({ error: 'internal error', code: 'internal' });
  };
}
