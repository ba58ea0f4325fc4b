/** Submitting tasks to the durable queue, reading them back, re-prioritizing and cancelling them. */
import { ConflictError, NotFoundError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { withTimeout } from '../../../common/timeout.ts';
import { type QueueKey, queueName, TASK_JOB_NAME, taskIdFor } from '../../../proto/src/queues.ts';
import type { SubmitTask, TaskView } from '../../../proto/src/schemas/task.ts';
import type { ResultCache } from '../cache/result-cache.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { Lane } from '../dispatch/lane.ts';
import type { LeaseTable } from '../dispatch/leases.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import { fairnessKey } from './fair-priority.ts';
import { KnownModels } from './known-models.ts';
import type { SecretVault } from './secret-vault.ts';
import { type SubmissionKeys, uniquePart } from './submission-keys.ts';
import {
  DEFAULT_TENANT,
  queueKeyOf,
  type TaskJob,
  type TaskJobData,
  toTaskView,
} from './task-data.ts';
import { QueueFullError, StoreUnavailableError, UnknownModelError } from './task-errors.ts';
import type { TaskEvents } from './task-events.ts';
import type { TaskQueues } from './task-queues.ts';
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

/** Ends tasks early (cancel); the dispatcher's stopper implements it. */
export interface TaskCanceller {
  cancel(taskId: string, reason: string): Promise<'cancelled' | 'finished'>;
}

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
  queues: TaskQueues;
  dispatcher: Dispatcher;
  canceller: TaskCanceller;
  registry: WorkerRegistry;
  leases: LeaseTable;
  events: TaskEvents;
  vault: SecretVault;
  log: Logger;
  defaults: { timeoutMs: number; attempts: number };
  /** The store runs one connection's commands in order (Redis), so reads can be pipelined with writes. */
  orderedStore: boolean;
  /** Answers identical earlier requests of the same tenant without a worker (when enabled). */
  cache?: ResultCache;
  /** Where a model-less keyed submission's task id is kept for its retries. */
  submissionKeys?: SubmissionKeys;
  /** MAX_QUEUED_PER_TENANT: tasks one tenant may have queued or running; unset = no cap. */
  maxQueuedPerTenant?: number;
}

export class TaskService {
  private readonly log: Logger;
  /** Lanes by queue name: each keeps its queue's fairness rounds (lanes live as long as the master). */
  private readonly lanes = new Map<string, Lane>();
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
    const { registry, dispatcher, events, vault, defaults } = this.deps;
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
    // The answer depends on the request, not on who pays: a caller's apiKey is not in the key.
    const cached = data.noCache ? undefined : await this.deps.cache?.find({ ...data, tenant });
    if (cached) data.cached = cached;
    // Counted from here on; uncounted again below if the store never takes it.
    const cap = this.deps.maxQueuedPerTenant ?? Number.POSITIVE_INFINITY;
    const until = now + timeoutMs + BACKLOG_GRACE_MS;
    const admitted = this.backlog.admit(tenant, taskId, until, cap, now);
    if (admitted === 'full') {
      this.log.warn({ tenant, cap }, 'submission refused: tenant queue full');
      throw new QueueFullError(tenant, cap);
    }
    const queue = this.deps.queues.get(key);
    const lane = this.laneOf(key);
    lane.know(key.labels);
    const options = {
      jobId: taskId,
      // Admitted right before the add (enqueue runs synchronously up to it), so rounds follow
      // insertion order; settled once the add has returned.
      // A cached answer goes before every task (0), as the stopper's jobs do: no round spent.
      priority: data.cached
        ? 0
        : lane.fairness.admit(data.priority, fairnessKey(ctx.sessionId, tenant)),
      attempts: defaults.attempts,
      backoff: { type: 'exponential' as const, delay: 500 },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    };
    const enqueue = async (): Promise<boolean> => {
      if (!data.cached) vault.put(taskId, input.apiKey);
      // A job id that exists already is not added again: a retried submission changes nothing,
      // and the state read before the add says whether there is anything new to announce.
      if (!(ctx.idempotencyKey || ctx.clientId)) {
        await queue.add(TASK_JOB_NAME, data, options);
        return true;
      }
      if (this.deps.orderedStore) {
        // One connection runs commands in order: read and add go out together, one round trip.
        const [before] = await Promise.all([
          queue.getJobState(taskId),
          queue.add(TASK_JOB_NAME, data, options),
        ]);
        return before === 'unknown';
      }
      if ((await queue.getJobState(taskId)) !== 'unknown') return false;
      await queue.add(TASK_JOB_NAME, data, options);
      return true;
    };
    let added: boolean;
    try {
      added = await withTimeout(
        enqueue(),
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
    } finally {
      if (!data.cached) lane.fairness.settle();
    }
    if (!input.model) this.deps.submissionKeys?.remember(ctx, taskId);
    // A retry of a task this master did not count (it may have ended long ago): leave it uncounted.
    if (!added && admitted === 'added') this.backlog.remove(taskId);
    if (!added) return { taskId };
    if (!data.noCache) this.deps.cache?.count(cached !== undefined);
    this.log.info(
      { taskId, model, gpu: data.gpu, labels, priority: data.priority, sessionId: ctx.sessionId },
      'task queued',
    );
    dispatcher.lane(key); // wakes it
    if (cached) lane.reap(); // taken and completed at once, worker or not
    events.emit('queued', ctx.sessionId, {
      taskId,
      clientId: ctx.clientId,
      waitingFor:
        !cached && lane.unservable()
          ? `no online worker serves ${lane.describeNeed()} yet`
          : undefined,
    });
    return { taskId };
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
    const { job, view } = await this.read(taskId, ctx.tenant);
    if (ctx.sessionId && job.data.sessionId !== ctx.sessionId) {
      throw new NotFoundError(`no task ${taskId}`);
    }
    if (view.state !== 'queued' || job.data.cached || job.data.ended) {
      const what = job.data.cached ? 'answered from the cache' : view.state;
      throw new ConflictError(`task ${taskId} is ${what}; only a queued task can move`);
    }
    if (job.data.priority === priority) return view;
    const fairness = this.laneOf(queueKeyOf(job.data)).fairness;
    const bullPriority = fairness.admit(priority, fairnessKey(job.data.sessionId, job.data.tenant));
    try {
      // Data first: a lane that takes the job in between sees a priority that does not match
      // its BullMQ priority and leaves the fairness rounds alone.
      await job.updateData({ ...job.data, priority });
      await job.changePriority({ priority: bullPriority });
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    } finally {
      fairness.settle();
    }
    this.log.info({ taskId, from: view.priority, to: priority }, 'task re-prioritized');
    return this.get(taskId);
  }

  /** With a tenant, only that tenant's tasks (others read as not found). */
  async get(taskId: string, ctx: { tenant?: string } = {}): Promise<TaskView> {
    return (await this.read(taskId, ctx.tenant)).view;
  }

  /** Like get, but only a task submitted in this session (others read as not found). */
  async getForSession(taskId: string, sessionId: string): Promise<TaskView> {
    const { view, job } = await this.read(taskId);
    if (job.data.sessionId !== sessionId) throw new NotFoundError(`no task ${taskId}`);
    return view;
  }

  /**
   * Cancels a queued or running task (the worker is told to stop). With a
   * session, only that session's tasks. A finished task is left as it is.
   */
  async cancel(
    taskId: string,
    ctx: { sessionId?: string; tenant?: string } = {},
  ): Promise<TaskView> {
    const { job } = await this.read(taskId, ctx.tenant);
    if (ctx.sessionId && job.data.sessionId !== ctx.sessionId) {
      throw new NotFoundError(`no task ${taskId}`);
    }
    await this.deps.canceller.cancel(taskId, 'cancelled by the user');
    return this.get(taskId);
  }

  private laneOf(key: QueueKey): Lane {
    const name = queueName(key);
    let lane = this.lanes.get(name);
    if (!lane) {
      lane = this.deps.dispatcher.lane(key);
      this.lanes.set(name, lane);
    }
    return lane;
  }

  private async read(taskId: string, tenant?: string): Promise<{ view: TaskView; job: TaskJob }> {
    const queue = this.deps.queues.ofTask(taskId);
    if (!queue) throw new NotFoundError(`no task ${taskId}`);
    // State first, then the job: a task that finishes in between reads as finished, never as
    // "completed" without its result.
    let state: string;
    let job: TaskJob | undefined;
    try {
      state = await queue.getJobState(taskId);
      job = (await queue.getJob(taskId)) as TaskJob | undefined;
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    }
    if (!job || state === 'unknown') throw new NotFoundError(`no task ${taskId}`);
    if (tenant !== undefined && (job.data.tenant ?? DEFAULT_TENANT) !== tenant) {
      throw new NotFoundError(`no task ${taskId}`);
    }
    const finished = job.finishedOn ? (job.returnvalue ? 'completed' : 'failed') : state;
    return { view: toTaskView(job, finished, this.deps.leases.get(taskId)), job };
  }

  /** Job counts per queue this master has opened (for metrics). */
  async queueCounts(): Promise<Record<string, Record<string, number>>> {
    const entries = await Promise.all(
      this.deps.queues.entries().map(async ([name, queue]) => {
        const counts = await queue.getJobCounts(
          'waiting',
          'prioritized',
          'delayed',
          'active',
          'completed',
          'failed',
        );
        return [name, counts] as const;
      }),
    );
    return Object.fromEntries(entries);
  }
}
