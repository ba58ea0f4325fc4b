/** The REST API, the OpenAI-compatible API, health endpoints and the static web UI. */
import { fileURLToPath } from 'node:url';
import express, { type Express, type Request, type Response } from 'express';
import helmet from 'helmet';
import { ValidationError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import { OPENAPI_PATH } from '../../../proto/src/http-api.ts';
import { buildOpenApiDocument } from '../../../proto/src/openapi.ts';
import type { WorkersResponse } from '../../../proto/src/schemas/metrics.ts';
import type { ModelsResponse } from '../../../proto/src/schemas/models.ts';
import { reprioritizeTaskSchema, taskIdSchema } from '../../../proto/src/schemas/task.ts';
import type { AlertEngine } from '../alerts/alert-engine.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { RefusalMeter } from '../audit/refusal-meter.ts';
import type { FleetControl as FleetCommands } from '../fleet/fleet-control.ts';
import type { TaskHistory } from '../history/task-history.ts';
import type { MasterMetrics } from '../metrics/master-metrics.ts';
import type { PrometheusSeries } from '../monitor/prometheus-series.ts';
import type { SeriesRecorder } from '../monitor/series.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskService } from '../tasks/task-service.ts';
import type { TaskWatch } from '../tasks/task-watch.ts';
import { auditRefusals } from './audited.ts';
import {
  type ApiAuth,
  callerOfResponse,
  identifyCaller,
  refuseAnonymous,
  taskScopeOf,
} from './auth.ts';
import { auditRoutes, fleetDispatchRoutes, workerControlRoutes } from './control-routes.ts';
import { errorHandler } from './errors.ts';
import { type FleetControl, fleetRoutes } from './fleet-routes.ts';
import { historyRoutes } from './history-routes.ts';
import { alertRoutes, seriesRoutes } from './monitor-routes.ts';
import { openAiErrors } from './openai-errors.ts';
import { openAiRoutes } from './openai-routes.ts';
import { createOriginPolicy, guardOrigin } from './origins.ts';
import { limitRequests, type RateLimiter, rateKeyOf } from './rate-limit.ts';
import { API_BODY_LIMIT, submitRoutes } from './submit-routes.ts';
import { vendorRoutes } from './web-assets.ts';

export const WEB_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url));

export interface Readiness {
  store: boolean;
  broker: boolean;
  grpc: boolean;
}

export interface HttpAppDeps {
  tasks: TaskService;
  /** Follows single tasks for the OpenAI-compatible API's answers. */
  watch: TaskWatch;
  registry: WorkerRegistry;
  metrics: MasterMetrics;
  readiness: () => Promise<Readiness>;
  /** API tokens: with any configured, every /api route needs one (auth.ts). */
  auth: ApiAuth;
  /** Requests per minute per tenant (per address without tokens), shared with Socket.IO. */
  limiter: RateLimiter;
  /** Browser origins besides the master's own that may call /api (CORS_ORIGINS). */
  corsOrigins: readonly string[];
  /** Admin-only credential routes under /api/workers. */
  fleet: FleetControl;
  /** Admin-only fleet control: worker commands, cordons, the emergency stop. */
  commands: FleetCommands;
  /** Where control actions, token changes and refusals are recorded. */
  audit: AuditLog;
  /** Bounds how many refusals (401/403) reach the audit trail. */
  refusals: RefusalMeter;
  /** The task history and usage (`GET /api/tasks`, timelines, `GET /api/usage`). */
  history: TaskHistory;
  /** The live series (admin only, `/api/series`), and Prometheus for older points. */
  series: SeriesRecorder;
  seriesArchive?: PrometheusSeries;
  /** The master's alerts (admin only, `/api/alerts`). */
  alerts: AlertEngine;
  log: Logger;
}

export function createHttpApp(deps: HttpAppDeps): Express {
  const log = deps.log.child({ component: 'http' });
  const app = express();
  app.disable('x-powered-by');
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: { 'connect-src': ["'self'", 'ws:', 'wss:'], upgradeInsecureRequests: null },
      },
    }),
  );
  // All before the body is even parsed: a refused origin, token or rate costs nothing more.
  // The OpenAI-compatible API gets the same guards, its refusals in OpenAI's shape.
  const originGuard = guardOrigin(
    createOriginPolicy({ corsOrigins: deps.corsOrigins, loopbackOnly: !deps.auth.enabled, log }),
    log,
  );
  const rateKey = (req: Request, res: Response) =>
    rateKeyOf(deps.auth.enabled, req.socket.remoteAddress, callerOfResponse(res)?.tenant);
  const guards = [
    originGuard,
    identifyCaller(deps.auth, log),
    limitRequests(deps.limiter, rateKey),
    refuseAnonymous(log),
  ];
  const refused = auditRefusals(deps.refusals);
  // The API's description holds no data: open to any caller the origin check lets in.
  let openApi: unknown;
  app.get(OPENAPI_PATH, refused, originGuard, (_req, res) => {
    openApi ??= buildOpenApiDocument();
    res.json(openApi);
  });
  app.use('/v1', refused, openAiErrors(), ...guards);
  app.use('/api', refused, ...guards);
  // Before the API's body parser: a batch has its own, larger bound.
  app.use('/api', submitRoutes({ tasks: deps.tasks, limiter: deps.limiter, rateKey, log }));
  app.use(express.json({ limit: API_BODY_LIMIT }));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  app.get('/readyz', async (_req, res) => {
    const checks = await deps.readiness();
    const ready = checks.store && checks.broker && checks.grpc;
    res.status(ready ? 200 : 503).json({ ready, checks });
  });

  const taskIdParam = (raw: unknown) => {
    const id = taskIdSchema.safeParse(raw);
    if (!id.success) throw new ValidationError(`task id: ${formatZodError(id.error)}`);
    return id.data;
  };

  app.use('/api', historyRoutes({ history: deps.history, tasks: deps.tasks }));

  app.get('/api/tasks/:id', async (req, res) => {
    res.json(await deps.tasks.get(taskIdParam(req.params.id), taskScopeOf(res)));
  });

  /** Moves a queued task to another priority: 200 with the task; 409 once it runs or has finished. */
  app.patch('/api/tasks/:id', async (req, res) => {
    const id = taskIdParam(req.params.id);
    const body = reprioritizeTaskSchema.safeParse(req.body);
    if (!body.success) throw new ValidationError(formatZodError(body.error));
    res.json(await deps.tasks.reprioritize(id, body.data.priority, taskScopeOf(res)));
  });

  /** Cancels a queued or running task: 200 with the task; 409 if it had already finished. */
  app.delete('/api/tasks/:id', async (req, res) => {
    res.json(await deps.tasks.cancel(taskIdParam(req.params.id), taskScopeOf(res)));
  });

  app.get('/api/workers', (_req, res) => {
    const body: WorkersResponse = {
      workers: deps.registry.views(),
      models: deps.registry.models(),
    };
    res.json(body);
  });
  app.use('/api/workers', fleetRoutes(deps.fleet, deps.audit, log));
  app.use('/api/workers', workerControlRoutes(deps.commands, deps.audit));
  app.use('/api/fleet', fleetDispatchRoutes(deps.commands, deps.audit));
  app.use('/api/audit', auditRoutes(deps.audit));
  app.use('/api/series', seriesRoutes({ series: deps.series, archive: deps.seriesArchive, log }));
  app.use('/api/alerts', alertRoutes(deps.alerts));

  /** The fleet's models: who serves each, who has it loaded, free slots, catalog facts. */
  app.get('/api/models', (_req, res) => {
    const body: ModelsResponse = { models: deps.registry.modelEntries() };
    res.json(body);
  });

  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.get('/api/metrics', async (_req, res) => {
    res.json(await deps.metrics.snapshot());
  });

  app.use('/api', (_req, res) => {
    res.status(404).json({ error: 'no such API route', code: 'not_found' });
  });
  app.use(
    '/v1',
    openAiRoutes({ tasks: deps.tasks, watch: deps.watch, registry: deps.registry, log }),
  );
  app.use('/vendor', vendorRoutes());
  // The operator console's page; its data needs an admin token (REST and its Socket.IO namespace).
  app.get('/console', (_req, res) => {
    res.sendFile('console.html', { root: WEB_ROOT, maxAge: '5m' });
  });
  app.use(express.static(WEB_ROOT, { index: 'index.html', maxAge: '5m' }));
  app.use(errorHandler(log));
  return app;
}
