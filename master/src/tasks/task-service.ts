/** Submitting tasks to the durable queue, reading them back, re-prioritizing and cancelling them. */
import { ConflictError, NotFoundError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { withTimeout } from '../../../common/timeout.ts';
import { taskIdFor } from '../../../proto/src/queues.ts';
import type { SubmitTask, TaskView } from '../../../proto/src/schemas/task.ts';
import type { ResultCache } from '../cache/result-cache.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { LeaseTable } from '../dispatch/leases.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskStore } from '../store/task-store.ts';
import { KnownModels } from './known-models.ts';
import type { TaskLifecycle } from './lifecycle.ts';
import type { SecretVault } from './secret-vault.ts';
import { type SubmissionKeys, uniquePart } from './submission-keys.ts';
import {
  DEFAULT_TENANT,
  queueKeyOf,
  type StoredTask,
  type TaskJobData,
  toTaskView,
} from './task-data.ts';
import { QueueFullError, StoreUnavailableError, UnknownModelError } from './task-errors.ts';
import type { TaskEvents, TaskRecordEvents } from './task-events.ts';
import { TenantBacklog } from './tenant-backlog.ts';

/** Model used when a request names none and no worker is online to suggest one. */
export const FALLBACK_MODEL = 'echo';

/** How long a submission waits for the store before answering "retry" (it may still land: submit again with the same key). */
export const SUBMIT_STORE_WAIT_MS = 8_000;

/**
 * A task this master never saw end stops counting against its tenant's cap
 * this long after its timeout (the deadline sweeper has ended it by then).
 */
export const BACKLOG_GRACE_MS = 60_000;

export interface SubmitContext {
  sessionId?: string;
  /** The client's id for this submission: the same (session, clientId) always names the same task. */
  clientId?: string;
  /** An Idempotency-Key: the same key always names the same task. */
  idempotencyKey?: string;
  /** The caller's tenant (from its API token); default DEFAULT_TENANT. */
  tenant?: string;
}

export interface TaskServiceDeps {
  store: TaskStore;
  /** Where a new task goes in its queue, and waking its lane. */
  dispatcher: Pick<Dispatcher, 'place' | 'added' | 'laneKeys'>;
  /** Announces new tasks, answers from the cache, ends cancelled ones. */
  lifecycle: Pick<TaskLifecycle, 'queued' | 'answered' | 'end'>;
  registry: WorkerRegistry;
  /** Running attempts: who runs a task, for its view. */
  leases: LeaseTable;
  /** Ended tasks stop counting against their tenant's cap. */
  events: TaskEvents;
  vault: SecretVault;
  log: Logger;
  defaults: { timeoutMs: number; attempts: number };
  /** Answers identical earlier requests of the same tenant without a worker (when enabled). */
  cache?: ResultCache;
  /** Where a model-less keyed submission's task id is kept for its retries. */
  submissionKeys?: SubmissionKeys;
  /** MAX_QUEUED_PER_TENANT: tasks one tenant may have queued or running; unset = no cap. */
  maxQueuedPerTenant?: number;
  /** Hears each new priority (the task history). */
  records?: TaskRecordEvents;
}

export class TaskService {
  private readonly log: Logger;
  private readonly known: KnownModels;
  private readonly backlog = new TenantBacklog();

  constructor(private readonly deps: TaskServiceDeps) {
    this.log = deps.log.child({ component: 'tasks' });
    this.known = new KnownModels({
      registry: deps.registry,
      laneKeys: () => deps.dispatcher.laneKeys(),
      // What a submission naming no model gets when no worker is online: never refused.
      always: [FALLBACK_MODEL],
    });
    const ended = (_sessionId: string | undefined, task: TaskView) => this.backlog.remove(task.id);
    deps.events.on('completed', ended);
    deps.events.on('failed', ended);
  }

  /** Models a submission may name (served now, or known to the fleet). */
  knownModels(): string[] {
    return this.known.list();
  }

  async submit(input: SubmitTask, ctx: SubmitContext = {}): Promise<{ taskId: string }> {
    const { registry, defaults } = this.deps;
    if (!input.model) {
      const earlier = await this.deps.submissionKeys?.earlier(ctx);
      if (earlier) return { taskId: earlier }; // a retry: the first try chose the model
    }
    const model = input.model ?? registry.models()[0] ?? FALLBACK_MODEL;
    if (input.model && !this.known.has(model)) {
      throw new UnknownModelError(model, this.known.list());
    }
    const labels = input.requires?.labels;
    const key = queueKeyOf({ model, gpu: input.requires?.gpu === true, labels });
    const taskId = taskIdFor(key, uniquePart(ctx));
    const tenant = ctx.tenant ?? DEFAULT_TENANT;
    const timeoutMs = input.timeoutMs ?? defaults.timeoutMs;
    const now = Date.now();
    const data: TaskJobData = {
      taskId,
      sessionId: ctx.sessionId,
      prompt: input.prompt,
      messages: input.messages,
      model,
      gpu: key.capability === 'gpu',
      ...(key.labels ? { labels: { ...key.labels } } : {}),
      params: input.params ?? {},
      priority: input.priority ?? 0,
      submittedAt: now,
      timeoutMs,
      tenant,
      ...(input.cache === false ? { noCache: true as const } : {}),
    };
    // Counted from here on; uncounted again below if the store never takes it.
    const cap = this.deps.maxQueuedPerTenant ?? Number.POSITIVE_INFINITY;
    const until = now + timeoutMs + BACKLOG_GRACE_MS;
    const admitted = this.backlog.admit(tenant, taskId, until, cap, now);
    if (admitted === 'full') {
      this.log.warn({ tenant, cap }, 'submission refused: tenant queue full');
      throw new QueueFullError(tenant, cap);
    }
    let added: boolean;
    try {
      added = await withTimeout(
        this.store(data, input.apiKey, ctx),
        SUBMIT_STORE_WAIT_MS,
        () => new Error('the store did not answer'),
      );
    } catch (err) {
      if (admitted === 'added') this.backlog.remove(taskId);
      this.log.warn({ err, taskId }, 'submission not confirmed by the store');
      throw new StoreUnavailableError({
        cause: err,
        detail: 'a retry with the same Idempotency-Key or clientId never duplicates the task',
      });
    }
    if (!input.model) this.deps.submissionKeys?.remember(ctx, taskId);
    // A retry of a task this master did not count (it may have ended long ago): leave it uncounted.
    if (!added && admitted === 'added') this.backlog.remove(taskId);
    return { taskId };
  }

  /**
   * Stores a new task: answered at once from the result cache, or added to
   * its queue; false when a task with its id exists already (a retried
   * submission changes nothing).
   */
  private async store(data: TaskJobData, apiKey: string | undefined, ctx: SubmitContext) {
    const { store, dispatcher, lifecycle } = this.deps;
    const keyed = Boolean(ctx.idempotencyKey || ctx.clientId);
    // The answer depends on the request, not on who pays: a caller's apiKey is not in the key.
    const cached = data.noCache
      ? undefined
      : await this.deps.cache?.find({ ...data, tenant: data.tenant ?? DEFAULT_TENANT });
    if (cached) {
      if (keyed && (await store.read(data.taskId))) return false;
      this.deps.cache?.count(true);
      await lifecycle.answered(data, cached, ctx.clientId);
      return true;
    }
    const key = queueKeyOf(data);
    const place = dispatcher.place(key, data.priority, {
      sessionId: ctx.sessionId,
      tenant: data.tenant,
    });
    let added: boolean;
    try {
      this.deps.vault.put(data.taskId, apiKey);
      // Admitted right before the add (this runs synchronously up to it), so fairness rounds
      // follow insertion order; settled once the add has returned.
      added = await store
        .queue(key)
        .add(
          data,
          { order: place.order, attempts: this.deps.defaults.attempts },
          keyed ? { ordered: store.kind === 'redis' } : undefined,
        );
    } finally {
      place.settle();
    }
    if (!added) return false;
    if (!data.noCache) this.deps.cache?.count(false);
    lifecycle.queued(data, ctx.clientId, dispatcher.added(key));
    return true;
  }

  /**
   * Moves a queued task to another priority (0–1000). There it counts as its
   * session's next task (a new fairness round). With a session or tenant, only
   * its tasks. A running, finished or ending task cannot move: 409.
   */
  async reprioritize(
    taskId: string,
    priority: number,
    ctx: { sessionId?: string; tenant?: string } = {},
  ): Promise<TaskView> {
    const task = await this.read(taskId, ctx);
    const view = this.view(task);
    if (view.state !== 'queued' || task.data.ended) {
      throw new ConflictError(`task ${taskId} is ${view.state}; only a queued task can move`);
    }
    if (task.data.priority === priority) return view;
    const { data } = task;
    const key = queueKeyOf(data);
    const place = this.deps.dispatcher.place(key, priority, data);
    try {
      await this.deps.store.queue(key).reorder(taskId, { ...data, priority }, place.order);
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    } finally {
      place.settle();
    }
    this.log.info({ taskId, from: view.priority, to: priority }, 'task re-prioritized');
    this.deps.records?.emit('reprioritized', taskId, priority, Date.now());
    return this.get(taskId);
  }

  /**
   * Submits a failed or cancelled task's request again as a new task of the
   * same tenant (its per-task API key is gone: the worker's own is used).
   * With a tenant, only that tenant's tasks; any other state is a conflict.
   */
  async resubmit(taskId: string, ctx: { tenant?: string } = {}): Promise<{ taskId: string }> {
    const task = await this.read(taskId, ctx);
    const { state } = this.view(task);
    if (state !== 'failed' && state !== 'cancelled') {
      throw new ConflictError(
        `task ${taskId} is ${state}; only a failed or cancelled task is retried`,
      );
    }
    const { data } = task;
    const submitted = await this.submit(
      {
        prompt: data.prompt,
        messages: data.messages,
        model: data.model,
        params: data.params,
        priority: data.priority,
        timeoutMs: data.timeoutMs,
        requires: data.labels ? { gpu: data.gpu, labels: data.labels } : { gpu: data.gpu },
        ...(data.noCache && { cache: false }),
      },
      { tenant: data.tenant ?? DEFAULT_TENANT },
    );
    this.log.info({ taskId: submitted.taskId, from: taskId }, 'task retried');
    return submitted;
  }

  /** With a tenant, only that tenant's tasks (others read as not found). */
  async get(taskId: string, ctx: { tenant?: string } = {}): Promise<TaskView> {
    return this.view(await this.read(taskId, ctx));
  }

  /** Like get, but only a task submitted in this session (others read as not found). */
  async getForSession(taskId: string, sessionId: string): Promise<TaskView> {
    return this.view(await this.read(taskId, { sessionId }));
  }

  /**
   * Cancels a queued or running task (the worker is told to stop). With a
   * session, only that session's tasks. A finished task is left as it is (409).
   */
  async cancel(
    taskId: string,
    ctx: { sessionId?: string; tenant?: string } = {},
  ): Promise<TaskView> {
    await this.read(taskId, ctx);
    const ended = await this.deps.lifecycle.end(taskId, {
      state: 'cancelled',
      reason: 'cancelled by the user',
      at: Date.now(),
    });
    return this.view(ended);
  }

  /** The task, if the caller may see it: with a tenant or a session, only theirs. */
  private async read(
    taskId: string,
    scope: { sessionId?: string; tenant?: string },
  ): Promise<StoredTask> {
    let task: StoredTask | undefined;
    try {
      task = await this.deps.store.read(taskId);
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    }
    const { tenant, sessionId } = scope;
    if (
      !task ||
      (tenant !== undefined && (task.data.tenant ?? DEFAULT_TENANT) !== tenant) ||
      (sessionId !== undefined && task.data.sessionId !== sessionId)
    ) {
      throw new NotFoundError(`no task ${taskId}`);
    }
    return task;
  }

  private view(task: StoredTask): TaskView {
    return toTaskView(task, this.deps.leases.get(task.data.taskId));
  }

  /** Task counts per queue this master has opened (for metrics). */
  queueCounts(): Promise<Record<string, Record<string, number>>> {
    return this.deps.store.counts();
  }
}
