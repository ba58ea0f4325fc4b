/**
 * The task history and usage over REST: `GET /api/tasks` (a filtered page,
 * JSON or CSV), `GET /api/tasks/:id/timeline`, `POST /api/tasks/:id/retry`
 * and `GET /api/usage` (JSON or CSV). Mounted on `/api` behind the API's
 * guards; a user token sees only its own tenant's tasks and usage.
 */
import { Router } from 'express';
import {
  type TaskSummary,
  taskListQuerySchema,
  type UsageRow,
  usageQuerySchema,
} from '../../../proto/src/schemas/console.ts';
import { type SubmitTaskResponse, taskIdSchema } from '../../../proto/src/schemas/task.ts';
import type { TaskHistory } from '../history/task-history.ts';
import type { TaskService } from '../tasks/task-service.ts';
import { taskScopeOf } from './auth.ts';
import { sendCsv, toCsv } from './csv.ts';
import { parseInput } from './errors.ts';

/** The CSV export's columns, in order. */
export const TASK_CSV_COLUMNS = [
  'id',
  'state',
  'tenant',
  'model',
  'priority',
  'attempts',
  'workerId',
  'submittedAt',
  'finishedAt',
  'totalMs',
  'ttftMs',
  'inputTokens',
  'outputTokens',
  'cached',
  'error',
  'prompt',
] as const satisfies readonly (keyof TaskSummary)[];

export const USAGE_CSV_COLUMNS = [
  'tenant',
  'model',
  'workerId',
  'period',
  'requests',
  'completed',
  'inputTokens',
  'outputTokens',
  'computeSeconds',
  'cacheHits',
] as const satisfies readonly (keyof UsageRow)[];

const parse = parseInput;

export interface HistoryRoutesDeps {
  history: TaskHistory;
  /** Retries go through the ordinary submission. */
  tasks: Pick<TaskService, 'resubmit'>;
}

export function historyRoutes(deps: HistoryRoutesDeps): Router {
  const router = Router();

  router.get('/tasks', async (req, res) => {
    const query = parse(taskListQuerySchema, req.query);
    const page = await deps.history.list(query, taskScopeOf(res));
    res.setHeader('Cache-Control', 'no-store');
    if (query.format === 'csv') {
      if (page.nextCursor) res.setHeader('X-Next-Cursor', page.nextCursor);
      sendCsv(res, 'flota-tasks.csv', toCsv(TASK_CSV_COLUMNS, page.tasks));
      return;
    }
    res.json(page);
  });

  router.get('/tasks/:id/timeline', async (req, res) => {
    const id = parse(taskIdSchema, req.params.id, 'task id');
    res.setHeader('Cache-Control', 'no-store');
    res.json(await deps.history.timeline(id, taskScopeOf(res)));
  });

  router.post('/tasks/:id/retry', async (req, res) => {
    const id = parse(taskIdSchema, req.params.id, 'task id');
    const { taskId } = await deps.tasks.resubmit(id, taskScopeOf(res));
    const reply: SubmitTaskResponse = { id: taskId };
    res.status(202).location(`/api/tasks/${taskId}`).json(reply);
  });

  router.get('/usage', async (req, res) => {
    const query = parse(usageQuerySchema, req.query);
    const report = await deps.history.usage(query, taskScopeOf(res));
    res.setHeader('Cache-Control', 'no-store');
    if (query.format === 'csv') {
      sendCsv(res, 'flota-usage.csv', toCsv(USAGE_CSV_COLUMNS, report.rows));
      return;
    }
    res.json(report);
  });
  return router;
}
