/**
 * Errors on `/v1` in OpenAI's shape: `{ error: { message, type, param, code } }`
 * with OpenAI's status codes, so SDKs raise their usual exceptions
 * (AuthenticationError, NotFoundError, RateLimitError, BadRequestError).
 *
 * flota's guards and error handler answer `{ error, code }` everywhere; on
 * `/v1` this middleware rewrites such a body as it leaves, so every refusal
 * (origin, token, rate limit, validation, unknown model, store down) is
 * translated in one place.
 */
import type { RequestHandler, Response } from 'express';
import { API_ERROR_CODES } from '../../../proto/src/http-api.ts';
import type { OpenAiErrorBody } from '../../../proto/src/schemas/openai.ts';

interface Translation {
  status?: number;
  type: string;
  code: string | null;
}

/** flota's error code → OpenAI's status (when it differs), type and code. */
const BY_CODE: Record<string, Translation> = {
  bad_request: { type: 'invalid_request_error', code: null },
  too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  unsupported_media_type: { type: 'invalid_request_error', code: null },
  [API_ERROR_CODES.unknownModel]: {
    status: 404,
    type: 'invalid_request_error',
    code: 'model_not_found',
  },
  [API_ERROR_CODES.unauthorized]: { type: 'invalid_request_error', code: 'invalid_api_key' },
  [API_ERROR_CODES.forbidden]: { type: 'invalid_request_error', code: 'permission_denied' },
  [API_ERROR_CODES.originRefused]: { type: 'invalid_request_error', code: 'origin_refused' },
  not_found: { type: 'invalid_request_error', code: 'not_found' },
  conflict: { type: 'invalid_request_error', code: 'conflict' },
  [API_ERROR_CODES.rateLimited]: { type: 'requests', code: 'rate_limit_exceeded' },
  [API_ERROR_CODES.queueFull]: { type: 'requests', code: 'queue_full' },
  unavailable: { type: 'server_error', code: 'service_unavailable' },
};

/** An OpenAI error body. */
export function openAiError(
  message: string,
  type: string,
  code: string | null,
  param: string | null = null,
): OpenAiErrorBody {
  return { error: { message, type, param, code } };
}

/** The field a validation message names first (`messages.0.role: …` → `messages`). */
const paramOf = (message: string): string | null =>
  /^([A-Za-z_][\w]*)(?:[.[:]|$)/.exec(message)?.[1] ?? null;

const isFlotaErrorBody = (body: unknown): body is { error: string; code?: string } =>
  typeof body === 'object' &&
  body !== null &&
  typeof (body as { error?: unknown }).error === 'string';

/** Rewrites every `{ error, code }` body this response sends into OpenAI's shape. */
export function openAiErrors(): RequestHandler {
  return (_req, res, next) => {
    const json = res.json.bind(res) as (body: unknown) => Response;
    res.json = ((body: unknown) => {
      if (res.statusCode < 400 || !isFlotaErrorBody(body)) return json(body);
      const known = BY_CODE[body.code ?? ''];
      if (known?.status) res.status(known.status);
      const type =
        known?.type ?? (res.statusCode >= 500 ? 'server_error' : 'invalid_request_error');
      const param = body.code === 'bad_request' ? paramOf(body.error) : null;
      return json(openAiError(body.error, type, known ? known.code : (body.code ?? null), param));
    }) as Response['json'];
    next();
  };
}
