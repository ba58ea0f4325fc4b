/**
 * Submissions over REST: `POST /api/tasks` (one task) and `POST
 * /api/tasks/batch` (up to MAX_BATCH_TASKS in one request, for batch and
 * evaluation work: one request, one rate-limit count and one body to parse
 * instead of hundreds). Mounted on `/api` behind the API's guards, before the
 * API's 1 MB body parser: the batch has its own, larger bound.
 */
import express, { type Request, type Response, Router } from 'express';
import { FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import {
  IDEMPOTENCY_HEADER,
  idempotencyKeySchema,
  SESSION_HEADER,
} from '../../../proto/src/http-api.ts';
import {
  MAX_BATCH_BODY_BYTES,
  type SubmitTaskBatchResponse,
  type SubmitTaskResponse,
  submitTaskBatchSchema,
  submitTaskSchema,
} from '../../../proto/src/schemas/task.ts';
import { sessionIdSchema } from '../../../proto/src/socket-events.ts';
import type { TaskService } from '../tasks/task-service.ts';
import { scopeSession, tenantOfResponse } from './auth.ts';
import { errorBodyOf, parseInput, RateLimitedError } from './errors.ts';
import { type RateLimiter, setRateLimitHeaders } from './rate-limit.ts';

/** Largest body of every other /api (and /v1) request. */
export const API_BODY_LIMIT = '1mb';

export interface SubmitRoutesDeps {
  tasks: TaskService;
  /** The API's limiter: a batch of N counts as N requests. */
  limiter: RateLimiter;
  /** The key the API's guard counted this request against. */
  rateKey(req: Request, res: Response): string;
  log: Logger;
}

/** What the headers of a submission say: its session (scoped to the tenant), its key, its tenant. */
function submitContextOf(req: Request, res: Response) {
  const session = req.get(SESSION_HEADER);
  const key = req.get(IDEMPOTENCY_HEADER);
  const tenant = tenantOfResponse(res);
  return {
    sessionId:
      session === undefined
        ? undefined
        : scopeSession(tenant, parseInput(sessionIdSchema, session, SESSION_HEADER)),
    idempotencyKey:
      key === undefined ? undefined : parseInput(idempotencyKeySchema, key, IDEMPOTENCY_HEADER),
    tenant,
  };
}

export function submitRoutes(deps: SubmitRoutesDeps): Router {
  const router = Router();

  router.post('/tasks/batch', express.json({ limit: MAX_BATCH_BODY_BYTES }), async (req, res) => {
    const { tasks } = parseInput(submitTaskBatchSchema, req.body);
    const ctx = submitContextOf(req, res);
    // The guard counted one request; the rest of the batch counts before anything is added.
    if (tasks.length > 1 && deps.limiter.enabled) {
      const verdict = await deps.limiter.consume(deps.rateKey(req, res), tasks.length - 1);
      setRateLimitHeaders(res, verdict);
      if (!verdict.allowed) throw new RateLimitedError(verdict.retryAfterS, verdict.limit);
    }
    // Started in order: each runs synchronously up to its store add, so the adds (and the
    // fairness rounds) follow the batch's order. A key names each task by its index.
    const outcomes = await Promise.allSettled(
      tasks.map((task, index) =>
        deps.tasks.submit(task, {
          ...ctx,
          idempotencyKey: ctx.idempotencyKey && `${ctx.idempotencyKey}#${index}`,
        }),
      ),
    );
    const reply: SubmitTaskBatchResponse = {
      tasks: outcomes.map((outcome, index) => {
        if (outcome.status === 'fulfilled') return { id: outcome.value.taskId };
        // A refusal says why in its entry; anything else is a bug, answered `internal`.
        if (!(outcome.reason instanceof FlotaError)) {
          deps.log.error({ err: outcome.reason, index }, 'batch submission failed');
        }
        return errorBodyOf(outcome.reason);
      }),
    };
    res.status(202).json(reply);
  });

  router.post('/tasks', express.json({ limit: API_BODY_LIMIT }), async (req, res) => {
    const task = parseInput(submitTaskSchema, req.body);
    const { taskId } = await deps.tasks.submit(task, submitContextOf(req, res));
    const reply: SubmitTaskResponse = { id: taskId };
    res.status(202).location(`/api/tasks/${taskId}`).json(reply);
  });

  return router;
}
