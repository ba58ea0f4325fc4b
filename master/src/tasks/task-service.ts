/** Submitting tasks to the durable queue and reading them back. */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock.ts';
import { NotFoundError, UnavailableError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import {
  queueKeyOfTaskId,
  queueName,
  TASK_JOB_NAME,
  taskIdFor,
} from '../../../proto/src/queues.ts';
import type { SubmitTask, TaskView } from '../../../proto/src/schemas/task.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { LeaseTable } from '../dispatch/leases.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { QueueStore, StoreQueue } from '../store/types.ts';
import type { SecretVault } from './secret-vault.ts';
import {
  queueKeyOf,
  type TaskJob,
  type TaskJobData,
  type TaskJobResult,
  toBullPriority,
  toTaskView,
} from './task-data.ts';
import type { TaskEvents } from './task-events.ts';

/** Model used when a request names none and no worker is online to suggest one. */
export const FALLBACK_MODEL = 'echo';

export interface TaskServiceDeps {
  store: QueueStore;
  dispatcher: Dispatcher;
  registry: WorkerRegistry;
  leases: LeaseTable;
  events: TaskEvents;
  vault: SecretVault;
  clock: Clock;
  log: Logger;
  defaults: { timeoutMs: number; attempts: number };
}

export class TaskService {
  private readonly queues = new Map<string, StoreQueue<TaskJobData, TaskJobResult>>();
  private readonly log: Logger;

  constructor(private readonly deps: TaskServiceDeps) {
    this.log = deps.log.child({ component: 'tasks' });
  }

  async submit(
    input: SubmitTask,
    ctx: { sessionId?: string; clientId?: string } = {},
  ): Promise<{ taskId: string }> {
    const { clock, registry, dispatcher, events, vault, defaults } = this.deps;
    const model = input.model ?? registry.models()[0] ?? FALLBACK_MODEL;
    const key = queueKeyOf({ model, gpu: input.requires?.gpu === true });
    const taskId = taskIdFor(key, randomUUID().replaceAll('-', ''));
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
      timeoutMs: defaults.timeoutMs,
    };
    vault.put(taskId, input.apiKey);
    try {
      await this.queue(queueName(key)).add(TASK_JOB_NAME, data, {
        jobId: taskId,
        priority: toBullPriority(data.priority),
        attempts: defaults.attempts,
        backoff: { type: 'exponential', delay: 500 },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      });
    } catch (err) {
      vault.drop(taskId);
      throw new UnavailableError('the queue store is not reachable; retry shortly', { cause: err });
    }
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
    const key = queueKeyOfTaskId(taskId);
    if (!key) throw new NotFoundError(`no task ${taskId}`);
    const queue = this.queue(queueName(key));
    // State first, then the job: a task that finishes in between reads as finished, never as
    // "completed" without its result.
    const state = await queue.getJobState(taskId);
    const job = (await queue.getJob(taskId)) as TaskJob | undefined;
    if (!job || state === 'unknown') throw new NotFoundError(`no task ${taskId}`);
    const finished = job.finishedOn ? (job.returnvalue ? 'completed' : 'failed') : state;
    return toTaskView(job, finished, this.deps.leases.get(taskId));
  }

  /** Job counts per queue this master has opened (for metrics). */
  async queueCounts(): Promise<Record<string, Record<string, number>>> {
    const entries = await Promise.all(
      [...this.queues].map(async ([name, queue]) => {
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

  private queue(name: string): StoreQueue<TaskJobData, TaskJobResult> {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = this.deps.store.createQueue<TaskJobData, TaskJobResult>(name);
      this.queues.set(name, queue);
    }
    return queue;
  }
}
