/**
 * Admin-only routes that manage the fleet's credentials: issue a worker its
 * own credential, issue a join token for an id prefix (workers whose id is
 * known only at start), revoke a worker. Answers carry secrets: they are
 * never logged, and every answer is `Cache-Control: no-store`.
 */
import { Router } from 'express';
import { ValidationError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  type CredentialResponse,
  emptyBodySchema,
  type JoinTokenResponse,
  joinTokenRequestSchema,
  type RevokeResponse,
} from '../../../proto/src/schemas/admin.ts';
import { workerIdSchema } from '../../../proto/src/schemas/worker.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { audited } from './audited.ts';
import { requireAdmin } from './auth.ts';

/** What the routes need of the master's credential authority (main.ts wires it). */
export interface FleetControl {
  /** A fresh credential for this worker id, provisioned on the broker. */
  issueCredential(workerId: string): Promise<string>;
  /** A join token for worker ids starting with `prefix`. */
  issueJoinToken(prefix: string): string;
  /** The worker's credentials stop working (and it is disconnected). */
  revoke(workerId: string): Promise<{ workerId: string; revokedAt: number }>;
}

const workerIdParam = (raw: unknown) => {
  const id = workerIdSchema.safeParse(raw);
  if (!id.success) throw new ValidationError(`worker id: ${formatZodError(id.error)}`);
  return id.data;
};

const noBody = (body: unknown) => {
  const parsed = emptyBodySchema.safeParse(body);
  if (!parsed.success) throw new ValidationError(formatZodError(parsed.error));
};

/** Mounted on `/api/workers`, behind authentication. Each issue and revocation is audited. */
export function fleetRoutes(fleet: FleetControl, audit: AuditLog, log: Logger): Router {
  const router = Router();
  router.use(
    ['/join-tokens', '/:id/credential', '/:id/revoke'],
    requireAdmin(),
    (_req, res, next) => {
      res.setHeader('Cache-Control', 'no-store');
      next();
    },
  );

  router.post('/join-tokens', async (req, res) => {
    const body = joinTokenRequestSchema.safeParse(req.body);
    if (!body.success) throw new ValidationError(formatZodError(body.error));
    const { prefix } = body.data;
    const joinToken = await audited(
      audit,
      req,
      res,
      { action: 'join-token.issue', target: `prefix=${prefix}` },
      async () => fleet.issueJoinToken(prefix),
    );
    const reply: JoinTokenResponse = { prefix, joinToken };
    log.info({ prefix }, 'join token issued');
    res.status(201).json(reply);
  });

  router.post('/:id/credential', async (req, res) => {
    const workerId = workerIdParam(req.params.id);
    noBody(req.body);
    const reply: CredentialResponse = {
      workerId,
      credential: await audited(
        audit,
        req,
        res,
        { action: 'credential.issue', target: workerId },
        () => fleet.issueCredential(workerId),
      ),
    };
    log.info({ workerId }, 'worker credential issued');
    res.status(201).json(reply);
  });

  router.post('/:id/revoke', async (req, res) => {
    const workerId = workerIdParam(req.params.id);
    noBody(req.body);
    const reply: RevokeResponse = await audited(
      audit,
      req,
      res,
      { action: 'worker.revoke', target: workerId },
      () => fleet.revoke(workerId),
    );
    log.info({ workerId }, 'worker revoked');
    res.json(reply);
  });
  return router;
}
