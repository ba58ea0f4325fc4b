import type { ErrorRequestHandler } from 'express';
import { FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';

const STATUS_BY_CODE: Record<string, number> = {
  bad_request: 400,
  not_found: 404,
  unavailable: 503,
};

/** Every error leaves as JSON `{ error, code }` with a message a person can act on. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const type = (err as { type?: string }).type;
    if (type === 'entity.parse.failed') {
      res.status(400).json({ error: 'request body is not valid JSON', code: 'bad_request' });
      return;
    }
    if (type === 'entity.too.large') {
      res.status(413).json({ error: 'request body is too large (limit 1 MB)', code: 'too_large' });
      return;
    }
    if (err instanceof FlotaError) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status === 503) res.setHeader('Retry-After', '2');
      res.status(status).json({ error: err.message, code: err.code });
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    res.status(500).json({ error: 'internal error', code: 'internal' });
  };
}
