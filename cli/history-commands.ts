/**
 * The task history and usage from the command line, through the master's
 * REST API: `flota tasks` (GET /api/tasks) and `flota usage`
 * (GET /api/usage). A user's token sees its own tenant; an admin's every
 * tenant's. Options are checked with the API's own schemas first.
 */
import type { Command } from 'commander';
import {
  type TaskPage,
  taskListQuerySchema,
  taskPageSchema,
  type UsageReport,
  usageQuerySchema,
  usageReportSchema,
} from '../proto/src/schemas/console.ts';
import { integer } from './client-commands.ts';
import { call, clientCommand } from './fleet-commands.ts';
import { type ClientOptions, check, queryOf } from './master-api.ts';

const iso = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString());

interface TasksOptions extends ClientOptions {
  state?: string;
  tenant?: string;
  model?: string;
  worker?: string;
  from?: string;
  to?: string;
  search?: string;
  limit?: number;
  cursor?: string;
}

/** `flota tasks`: the task history, newest first. */
export function tasksCommand(): Command {
  return clientCommand('tasks', 'list tasks from the history, newest first')
    .option('--state <state>', 'queued, running, completed, failed or cancelled')
    .option('--tenant <tenant>', "only this tenant's (admin)")
    .option('--model <model>', 'only this model')
    .option('--worker <id>', "only this worker's")
    .option('--from <when>', 'submitted at or after (Unix ms or ISO 8601)')
    .option('--to <when>', 'submitted at or before (Unix ms or ISO 8601)')
    .option('--search <text>', 'a task id, or text the prompt contains')
    .option('--limit <n>', 'tasks per page (1-500, default 50)', integer)
    .option('--cursor <cursor>', 'continue from a page’s next cursor')
    .action(async (opts: TasksOptions) => {
      const query = check(taskListQuerySchema, {
        state: opts.state,
        tenant: opts.tenant,
        model: opts.model,
        workerId: opts.worker,
        from: opts.from,
        to: opts.to,
        q: opts.search,
        limit: opts.limit,
        cursor: opts.cursor,
      });
      const page: TaskPage = await call(
        opts,
        `/api/tasks?${queryOf(query)}`,
        { method: 'GET' },
        taskPageSchema,
      );
      if (opts.json) {
        console.log(JSON.stringify(page, null, 2));
        return;
      }
      if (page.tasks.length === 0) console.log('no tasks');
      else {
        console.table(
          page.tasks.map((t) => ({
            id: t.id,
            state: t.state,
            tenant: t.tenant,
            model: t.model,
            worker: t.workerId ?? '',
            attempts: t.attempts,
            submitted: iso(t.submittedAt),
            'total ms': t.totalMs === undefined ? '' : Math.round(t.totalMs),
            tokens: t.outputTokens === undefined ? '' : `${t.inputTokens}/${t.outputTokens}`,
            prompt: t.prompt.length > 40 ? `${t.prompt.slice(0, 39)}…` : t.prompt,
          })),
        );
      }
      if (page.nextCursor) console.log(`more: --cursor ${page.nextCursor}`);
    });
}

interface UsageOptions extends ClientOptions {
  from?: string;
  to?: string;
  groupBy?: string;
  tenant?: string;
}

/** `flota usage`: finished tasks, tokens and compute time, summed per group. */
export function usageCommand(): Command {
  return clientCommand('usage', 'show usage per tenant, model, worker, hour or day')
    .option('--from <when>', 'finished at or after (default: 24 hours ago)')
    .option('--to <when>', 'finished at or before (default: now)')
    .option('--group-by <groups>', 'comma list of tenant, model, worker, hour, day', 'tenant')
    .option('--tenant <tenant>', "only this tenant's (admin)")
    .action(async (opts: UsageOptions) => {
      const query = check(usageQuerySchema, {
        from: opts.from,
        to: opts.to,
        groupBy: opts.groupBy,
        tenant: opts.tenant,
      });
      const report: UsageReport = await call(
        opts,
        `/api/usage?${queryOf(query)}`,
        { method: 'GET' },
        usageReportSchema,
      );
      if (opts.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      console.log(`usage from ${iso(report.from)} to ${iso(report.to)}`);
      if (report.rows.length === 0) console.log('no finished tasks');
      else {
        console.table(
          report.rows.map((r) => ({
            ...(r.tenant !== undefined && { tenant: r.tenant }),
            ...(r.model !== undefined && { model: r.model }),
            ...(r.workerId !== undefined && { worker: r.workerId }),
            ...(r.period !== undefined && { period: iso(r.period) }),
            requests: r.requests,
            completed: r.completed,
            'tokens in': r.inputTokens,
            'tokens out': r.outputTokens,
            'compute s': Number(r.computeSeconds.toFixed(1)),
            'cache hits': r.cacheHits,
          })),
        );
      }
    });
}
