/**
 * The audit trail at the HTTP edge: who is asking and from where, a
 * wrapper that records an admin action with its outcome, and the
 * middleware that records every 401/403 (through the RefusalMeter's bound).
 */
import type { Request, RequestHandler, Response } from 'express';
import { FlotaError } from '../../../common/errors.ts';
import { API_ERROR_CODES } from '../../../proto/src/http-api.ts';
import type { AuditAction, AuditResult } from '../../../proto/src/schemas/audit.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { RefusalMeter } from '../audit/refusal-meter.ts';
import { callerOfResponse } from './auth.ts';

/** The caller's tenant and role (never the token) and address. */
export function whoOf(req: Request, res: Response) {
  const caller = callerOfResponse(res);
  return {
    actor: caller?.tenant,
    role: caller?.role,
    from: req.socket.remoteAddress?.slice(0, 128),
  };
}

function resultOf(err: unknown): AuditResult {
  if (!(err instanceof FlotaError)) return 'failed';
  if (err.code === API_ERROR_CODES.notAcknowledged) return 'timeout';
  if (err.code === API_ERROR_CODES.workerRefused) return 'refused';
  return 'failed';
}

/** Runs an admin action and records it, with its outcome, before the answer goes out. */
export async function audited<T>(
  audit: AuditLog,
  req: Request,
  res: Response,
  what: { action: AuditAction; target?: string; detail?: string },
  act: () => Promise<T>,
): Promise<T> {
  try {
    const out = await act();
    await audit.record({ ...whoOf(req, res), ...what, result: 'ok' });
    return out;
  } catch (err) {
    await audit.record({
      ...whoOf(req, res),
      ...what,
      result: resultOf(err),
      detail: (err instanceof Error ? err.message : String(err)).slice(0, 1_000),
    });
    throw err;
  }
}

/** Records every refused request (401, 403) of the routes it guards; mount before the guards. */
export function auditRefusals(meter: RefusalMeter): RequestHandler {
  return (req, res, next) => {
    res.on('finish', () => {
      if (res.statusCode !== 401 && res.statusCode !== 403) return;
      const who = whoOf(req, res);
      meter.refused({
        ...who,
        target: `${req.method} ${req.originalUrl.split('?')[0]}`.slice(0, 512),
        detail: `${res.statusCode} ${res.statusCode === 401 ? 'no valid API token' : 'not allowed'}`,
      });
    });
    next();
  };
}
