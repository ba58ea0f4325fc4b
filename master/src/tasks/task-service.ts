/** Submitting tasks to the durable queue, reading them back, cancelling them. */
import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock.ts';
import { NotFoundError, UnavailableError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { TASK_JOB_NAME, taskIdFor } from '../../../proto/src/queues.ts';
import type { SubmitTask, TaskView } from '../../../proto/src/schemas/task.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { LeaseTable } from '../dispatch/leases.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { SecretVault } from './secret-vault.ts';
import {
  queueKeyOf,
  type TaskJob,
  type TaskJobData,
  toBullPriority,
  toTaskView,
} from './task-data.ts';
import type { TaskEvents } from './task-events.ts';
import type { TaskQueues } from './task-queues.ts';

/** Model used when a request names none and no worker is online to suggest one. */
export const FALLBACK_MODEL = 'echo';

/** How long a submission waits for the store before answering "retry" (it may still land: submit again with the same key). */
export const SUBMIT_STORE_WAIT_MS = 8_000;

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
}

export interface TaskServiceDeps {
  queues: TaskQueues;
  dispatcher: Dispatcher;
  canceller: TaskCanceller;
  registry: WorkerRegistry;
  leases: LeaseTable;
  events: TaskEvents;
  vault: SecretVault;
  clock: Clock;
  log: Logger;
  defaults: { timeoutMs: number; attempts: number };
  /** The store runs one connection's commands in order (Redis), so reads can be pipelined with writes. */
  orderedStore: boolean;
}

/** A stable task id suffix for a retried submission, or a fresh one. */
function uniquePart(ctx: SubmitContext): string {
  const key = ctx.idempotencyKey
    ? `key:${ctx.idempotencyKey}`
    : ctx.clientId && ctx.sessionId
      ? `client:${ctx.sessionId}:${ctx.clientId}`
      : undefined;
  if (!key) return randomUUID().replaceAll('-', '');
  return createHash('sha256').update(key).digest('base64url').slice(0, 32);
}

export class TaskService {
  private readonly log: Logger;

  constructor(private readonly deps: TaskServiceDeps) {
    this.log = deps.log.child({ component: 'tasks' });
  }

  async submit(input: SubmitTask, ctx: SubmitContext = {}): Promise<{ taskId: string }> {
    const { clock, registry, dispatcher, events, vault, defaults } = this.deps;
    const model = input.model ?? registry.models()[0] ?? FALLBACK_MODEL;
    const key = queueKeyOf({ model, gpu: input.requires?.gpu === true });
    const taskId = taskIdFor(key, uniquePart(ctx));
    const data: TaskJobData = {
      taskId,
      sessionId: ctx.sessionId,
      prompt: input.prompt,
      messages: input.messages,
      model,
      gpu: key.capability === 'gpu',
      params: input.params ?? {},
      priority: input.priority ?? 0,
      submittedAt: clock.now(),
      timeoutMs: input.timeoutMs ?? defaults.timeoutMs,
    };
    const queue = this.deps.queues.get(key);
    const options = {
      jobId: taskId,
      priority: toBullPriority(data.priority),
      attempts: defaults.attempts,
      backoff: { type: 'exponential' as const, delay: 500 },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    };
    const enqueue = async (): Promise<boolean> => {
      vault.put(taskId, input.apiKey);
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
    let timer: NodeJS.Timeout | undefined;
    let added: boolean;
    try {
      added = await Promise.race([
        enqueue(),
        new Promise<never>((_, reject) => {
          timer = clock.setTimeout(
            () => reject(new Error('the store did not answer')),
            SUBMIT_STORE_WAIT_MS,
          );
        }),
      ]);
    } catch (err) {
      this.log.warn({ err, taskId }, 'submission not confirmed by the store');
      throw new UnavailableError(
        'the queue store is not reachable; retry shortly (a retry with the same Idempotency-Key or clientId never duplicates the task)',
        { cause: err },
      );
    } finally {
      if (timer) clock.clearTimeout(timer);
    }
    if (!added) return { taskId };
    this.log.info({ taskId, model, gpu: data.gpu, sessionId: ctx.sessionId }, 'task queued');
    const lane = dispatcher.lane(key);
    events.emit('queued', ctx.sessionId, {
      taskId,
      clientId: ctx.clientId,
      waitingFor: lane.unservable()
        ? `no online worker serves ${model}${data.gpu ? ' on a GPU' : ''} yet`
        : undefined,
    });
    return { taskId };
  }

  async get(taskId: string): Promise<TaskView> {
    return (await this.read(taskId)).view;
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
  async cancel(taskId: string, ctx: { sessionId?: string } = {}): Promise<TaskView> {
    const { job } = await this.read(taskId);
    if (ctx.sessionId && job.data.sessionId !== ctx.sessionId) {
      throw new NotFoundError(`no task ${taskId}`);
    }
    await this.deps.canceller.cancel(taskId, 'cancelled by the user');
    return this.get(taskId);
  }

  private async read(taskId: string): Promise<{ view: TaskView; job: TaskJob }> {
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
      throw new UnavailableError('the queue store is not reachable; retry shortly', { cause: err });
    }
    if (!job || state === 'unknown') throw new NotFoundError(`no task ${taskId}`);
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
