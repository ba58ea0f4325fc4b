/**
 * Reading the task history for the API: the caller's scope applied (a user
 * sees its own tenant only), defaults filled, and unknown tasks refused the
 * way `GET /api/tasks/:id` refuses them.
 */
import { NotFoundError, UnavailableError } from '../../../common/errors.ts';
import type {
  TaskListQuery,
  TaskPage,
  TaskTimeline,
  UsageQuery,
  UsageReport,
} from '../../../proto/src/schemas/console.ts';
import type { StoreHistory } from '../store/types.ts';

/** `GET /api/usage` without `from`: this long before `to`. */
export const DEFAULT_USAGE_SPAN_MS = 24 * 3_600_000;

/** Whose tasks a caller may read: a tenant, or everyone's (an admin). */
export interface HistoryScope {
  tenant?: string;
}

export class TaskHistory {
  constructor(private readonly store: StoreHistory) {}

  async list(query: TaskListQuery, scope: HistoryScope): Promise<TaskPage> {
    const { format: _format, ...rest } = query;
    return this.ask(() =>
      this.store.page(scope.tenant === undefined ? rest : { ...rest, tenant: scope.tenant }),
    );
  }

  async timeline(taskId: string, scope: HistoryScope): Promise<TaskTimeline> {
    const found = await this.ask(() => this.store.timeline(taskId));
    if (!found || (scope.tenant !== undefined && found.task.tenant !== scope.tenant)) {
      throw new NotFoundError(`no task ${taskId}`);
    }
    return found;
  }

  async usage(query: UsageQuery, scope: HistoryScope, now = Date.now()): Promise<UsageReport> {
    const to = query.to ?? now;
    const from = query.from ?? to - DEFAULT_USAGE_SPAN_MS;
    const tenant = scope.tenant ?? query.tenant;
    const rows = await this.ask(() =>
      this.store.usage({ from, to, groupBy: query.groupBy, ...(tenant && { tenant }) }),
    );
    return { from, to, groupBy: query.groupBy, rows };
  }

  /** A store that fails answers 503 (retry), like the task routes. */
  private async ask<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      if (err instanceof NotFoundError || (err as { code?: string }).code === 'bad_request') {
        throw err;
      }
      throw new UnavailableError('the task history is unavailable; retry', { cause: err });
    }
  }
}
