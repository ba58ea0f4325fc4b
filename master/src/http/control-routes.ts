/**
 * Admin-only fleet control and the audit trail over REST: drain, resume,
 * stop, restart and reconfigure a worker, cordon a kind or labels
 * (`/api/workers`), stop and resume all dispatch (`/api/fleet`), read the
 * trail (`/api/audit`). Every command is recorded in the trail with its
 * outcome; the fleet's state itself is FleetControl's.
 */
import { type Request, type Response, Router } from 'express';
import { emptyBodySchema } from '../../../proto/src/schemas/admin.ts';
import { type AuditAction, auditQuerySchema } from '../../../proto/src/schemas/audit.ts';
import {
  type CordonResponse,
  fleetStopRequestSchema,
  type WorkerCommandResponse,
  workerConfigRequestSchema,
  workerSelectorSchema,
} from '../../../proto/src/schemas/fleet.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import { workerIdSchema } from '../../../proto/src/schemas/worker.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { FleetControl } from '../fleet/fleet-control.ts';
import { audited, whoOf } from './audited.ts';
import { requireAdmin } from './auth.ts';
import { parseInput } from './errors.ts';

const parse = parseInput;

const describeSelector = (selector: { kind?: string; labels?: Record<string, string> }) =>
  [
    selector.kind && `kind=${selector.kind}`,
    ...Object.entries(selector.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ]
    .filter(Boolean)
    .join(',');

/** Mounted on `/api/workers`, behind authentication (after the credential routes). */
export function workerControlRoutes(fleet: FleetControl, audit: AuditLog): Router {
  const router = Router();
  router.use(requireAdmin());

  const cordonRoute =
    (action: AuditAction, act: typeof fleet.cordon) => async (req: Request, res: Response) => {
      const selector = parse(workerSelectorSchema, req.body);
      const workers = await audited(
        audit,
        req,
        res,
        { action, target: describeSelector(selector) },
        () => act(selector, whoOf(req, res).actor),
      );
      const reply: CordonResponse = { selector, workers };
      res.json(reply);
    };
  router.post(
    '/drain',
    cordonRoute('workers.cordon', (s, by) => fleet.cordon(s, by)),
  );
  router.post(
    '/resume',
    cordonRoute('workers.uncordon', (s) => fleet.uncordon(s)),
  );

  const command =
    (
      name: WorkerCommandResponse['command'],
      action: AuditAction,
      act: (workerId: string, req: Request, res: Response) => Promise<WorkerView>,
    ) =>
    async (req: Request, res: Response) => {
      const workerId = parse(workerIdSchema, req.params.id, 'worker id');
      const worker = await audited(audit, req, res, { action, target: workerId }, () =>
        act(workerId, req, res),
      );
      const reply: WorkerCommandResponse = { workerId, command: name, worker };
      res.json(reply);
    };
  const noBody = (req: Request) => parse(emptyBodySchema, req.body);

  router.post(
    '/:id/drain',
    command('drain', 'worker.drain', (id, req, res) => {
      noBody(req);
      return fleet.drain(id, whoOf(req, res).actor);
    }),
  );
  router.post(
    '/:id/resume',
    command('resume', 'worker.resume', (id, req) => {
      noBody(req);
      return fleet.resume(id);
    }),
  );
  router.post(
    '/:id/stop',
    command('stop', 'worker.stop', (id, req) => {
      noBody(req);
      return fleet.stopWorker(id, false);
    }),
  );
  router.post(
    '/:id/restart',
    command('restart', 'worker.restart', (id, req) => {
      noBody(req);
      return fleet.stopWorker(id, true);
    }),
  );
  router.patch('/:id/config', async (req, res) => {
    const workerId = parse(workerIdSchema, req.params.id, 'worker id');
    const config = parse(workerConfigRequestSchema, req.body);
    const worker = await audited(
      audit,
      req,
      res,
      { action: 'worker.config', target: workerId, detail: JSON.stringify(config).slice(0, 1_000) },
      () => fleet.configure(workerId, config),
    );
    const reply: WorkerCommandResponse = { workerId, command: 'config', worker };
    res.json(reply);
  });
  return router;
}

/** Mounted on `/api/fleet`: all dispatch at once. */
export function fleetDispatchRoutes(fleet: FleetControl, audit: AuditLog): Router {
  const router = Router();
  router.use(requireAdmin());
  router.get('/', (_req, res) => {
    res.json(fleet.state());
  });
  router.post('/stop', async (req, res) => {
    const { running } = parse(fleetStopRequestSchema, req.body ?? {});
    const state = await audited(
      audit,
      req,
      res,
      { action: 'fleet.stop', detail: `running tasks: ${running}` },
      () => fleet.stopAll(running, whoOf(req, res).actor),
    );
    res.json(state);
  });
  router.post('/resume', async (req, res) => {
    parse(emptyBodySchema, req.body);
    const state = await audited(audit, req, res, { action: 'fleet.resume' }, async () =>
      fleet.resumeAll(whoOf(req, res).actor),
    );
    res.json(state);
  });
  return router;
}

/** Mounted on `/api/audit`: the trail, newest first, a page at a time. */
export function auditRoutes(audit: AuditLog): Router {
  const router = Router();
  router.use(requireAdmin());
  router.get('/', async (req, res) => {
    const query = parse(auditQuerySchema, req.query);
    res.setHeader('Cache-Control', 'no-store');
    res.json(await audit.page(query));
  });
  return router;
}
