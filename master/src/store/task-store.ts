/**
 * Tasks in the durable queue, in flota's terms. BullMQ stays behind this
 * file: the rest of the master reads `StoredTask`s, adds and marks tasks by
 * id, and holds a taken task as a `HeldTask` (the job and its lock token,
 * which doubles as the attempt's fencing lease). One BullMQ Queue per task
 * queue name, opened on first use.
 */
import { type Job, UnrecoverableError } from 'bullmq';
import {
  type QueueKey,
  queueKeyOfTaskId,
  queueName,
  TASK_JOB_NAME,
} from '../../../proto/src/queues.ts';
import type {
  StoredState,
  StoredTask,
  TaskEnding,
  TaskJobData,
  TaskJobResult,
} from '../tasks/task-data.ts';
import type { QueueStore, StoreQueue, StoreWorker } from './types.ts';

type TaskJob = Job<TaskJobData, TaskJobResult>;
type TaskQueue = StoreQueue<TaskJobData, TaskJobResult>;

/** How the queue orders and keeps a task (the store's retry policy). */
export interface AddOptions {
  /** The queue's order: lower first; 0 is before every task (endings). */
  order: number;
  attempts: number;
}

const RETRY_BACKOFF_MS = 500;
const KEEP_COMPLETED = { age: 24 * 3600, count: 10_000 };
const KEEP_FAILED = { age: 7 * 24 * 3600 };

function stateOf(bullState: string, job: TaskJob): StoredState {
  if (job.finishedOn) return job.returnvalue ? 'completed' : 'failed';
  switch (bullState) {
    case 'active':
      return 'running';
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    default:
      return 'queued';
  }
}

function stored(job: TaskJob, state: StoredState): StoredTask {
  return {
    data: job.data,
    state,
    result: job.returnvalue ?? undefined,
    failedReason: job.failedReason || undefined,
    finishedOn: job.finishedOn ?? undefined,
    attemptsMade: job.attemptsMade,
  };
}

/**
 * A task taken from the queue under a lock. Only the holder may finish it;
 * every call fails once the lock is lost (the store rejects the token).
 */
export class HeldTask {
  /** The attempt this take is: unique per take, so fencing and UIs never confuse two runs. */
  readonly attempt: number;

  constructor(
    private readonly job: TaskJob,
    /** The lock token: the attempt's fencing lease. */
    readonly token: string,
    /** The name of its queue. */
    readonly queue: string,
  ) {
    this.attempt = Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1);
  }

  get taskId(): string {
    return this.job.data.taskId;
  }

  get data(): TaskJobData {
    return this.job.data;
  }

  /** Its place in the queue when it was taken (fair-priority.ts reads the rounds off it). */
  get order(): number {
    return this.job.priority;
  }

  /** Stores the answer: the task is completed. */
  async complete(result: TaskJobResult): Promise<StoredTask> {
    await this.job.moveToCompleted(result, this.token, false);
    return { ...stored(this.job, 'completed'), result, finishedOn: result.committedAt };
  }

  /**
   * Ends this attempt with an error. `retry`: the store runs the task again
   * (with backoff) while attempts remain; otherwise it fails for good.
   * `next`: the task's data for the next attempt, written first (while the
   * lock is held) when it differs.
   */
  async fail(reason: string, retry: boolean, next?: TaskJobData): Promise<StoredTask> {
    if (next && next !== this.job.data) {
      await this.job.updateData(next);
      this.job.data = next;
    }
    const error = retry ? new Error(reason) : new UnrecoverableError(reason);
    await this.job.moveToFailed(error, this.token, false);
    const state = retry ? await this.job.getState() : 'failed';
    const finished = state === 'failed';
    return {
      ...stored(this.job, finished ? 'failed' : 'queued'),
      failedReason: reason,
      finishedOn: finished ? (this.job.finishedOn ?? Date.now()) : undefined,
    };
  }

  /** Writes the ending into the task's stored data first, then fails it with its reason. */
  async end(ending: TaskEnding): Promise<StoredTask> {
    if (!this.job.data.ended) await this.job.updateData({ ...this.job.data, ended: ending });
    this.job.data = { ...this.job.data, ended: ending };
    return this.fail(ending.reason, false);
  }

  /** Keeps the lock another `ms`; false when it was lost (the task went back or ended). */
  async extend(ms: number): Promise<boolean> {
    return (await this.job.extendLock(this.token, ms)) === 1;
  }

  /** Gives the task back to the queue, in its place (it was taken with nobody to run it). */
  async putBack(): Promise<void> {
    await this.job.moveToDelayed(Date.now(), this.token);
  }
}

/** One task queue (capability + model + labels). */
export class TaskQueueHandle {
  constructor(
    private readonly queue: TaskQueue,
    private readonly name: string,
  ) {}

  /**
   * Adds a task under its id. With `onlyIfNew`, answers whether it is new:
   * a task id the store knows already is never added twice. `ordered`: the
   * store runs one connection's commands in order (Redis), so the read and
   * the add go out together.
   */
  async add(
    data: TaskJobData,
    options: AddOptions,
    check?: { ordered: boolean },
  ): Promise<boolean> {
    const bullOptions = {
      jobId: data.taskId,
      priority: options.order,
      attempts: options.attempts,
      backoff: { type: 'exponential' as const, delay: RETRY_BACKOFF_MS },
      removeOnComplete: KEEP_COMPLETED,
      removeOnFail: KEEP_FAILED,
    };
    const add = () => this.queue.add(TASK_JOB_NAME, data, bullOptions);
    if (!check) {
      await add();
      return true;
    }
    if (check.ordered) {
      const [before] = await Promise.all([this.queue.getJobState(data.taskId), add()]);
      return before === 'unknown';
    }
    if ((await this.queue.getJobState(data.taskId)) !== 'unknown') return false;
    await add();
    return true;
  }

  /** The task as stored, or undefined when the store does not have it. */
  async read(taskId: string): Promise<StoredTask | undefined> {
    const found = await this.find(taskId);
    return found && stored(found.job, found.state);
  }

  private async find(taskId: string): Promise<{ job: TaskJob; state: StoredState } | undefined> {
    // State first, then the job: a task that finishes in between reads as finished, never as
    // "completed" without its result.
    const state = await this.queue.getJobState(taskId);
    const job = (await this.queue.getJob(taskId)) as TaskJob | undefined;
    if (!job || state === 'unknown') return undefined;
    return { job, state: stateOf(state, job) };
  }

  /**
   * Marks a task nobody holds as ended and moves it to the head of its queue
   * (order 0), where the next take gets it and ends it: the store has no way
   * to fail a task nobody holds, so the ending is durable this way. Returns
   * the task as marked, or as it was when it had finished already; undefined
   * when the store does not have it.
   */
  async markEnded(taskId: string, ending: TaskEnding): Promise<StoredTask | undefined> {
    const found = await this.find(taskId);
    if (!found || found.state === 'completed' || found.state === 'failed') {
      return found && stored(found.job, found.state);
    }
    const { job, state } = found;
    await job.updateData({ ...job.data, ended: ending });
    // A running job (a previous master's, not adopted yet) keeps 0 for when it stalls back.
    const head = job.changePriority({ priority: 0 });
    await (state === 'running' ? head.catch(() => undefined) : head);
    return stored(job, state);
  }

  /** Moves a queued task to another place in the queue, its data first. */
  async reorder(taskId: string, data: TaskJobData, order: number): Promise<void> {
    const job = (await this.queue.getJob(taskId)) as TaskJob | undefined;
    if (!job) return;
    // Data first: a lane that takes the job in between sees a priority that does not match
    // its order and leaves the fairness rounds alone.
    await job.updateData(data);
    await job.changePriority({ priority: order });
  }

  /** Tasks at order 0 (only ever ended ones) waiting at the head. */
  async headCount(): Promise<number> {
    return (await this.queue.getJobCounts('wait')).wait ?? 0;
  }

  /** Any task of the queue, read without taking it (all of them carry its labels). */
  async peek(): Promise<TaskJobData | undefined> {
    const [job] = await this.queue.getJobs(['prioritized', 'wait', 'delayed', 'active'], 0, 0);
    const any = job ?? (await this.queue.getJobs(['completed', 'failed'], 0, 0))[0];
    return (any as TaskJob | undefined)?.data;
  }

  /** Up to `limit` tasks that wait (queued or delayed for a retry), head first. */
  async waiting(limit: number): Promise<TaskJobData[]> {
    const jobs = (await this.queue.getJobs(
      ['prioritized', 'wait', 'delayed'],
      0,
      limit - 1,
    )) as TaskJob[];
    return jobs.flatMap((job) => (job?.data ? [job.data] : []));
  }

  /** Counts by the store's states, for metrics. */
  counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts(
      'waiting',
      'prioritized',
      'delayed',
      'active',
      'completed',
      'failed',
    );
  }

  /**
   * A running task whose lock `token` the caller presents (a worker's lease
   * after a master restart): renewed for `ms` and held from now on, 'gone'
   * when the store has no such task, 'stale' when that lock is not its.
   */
  async adopt(taskId: string, token: string, ms: number): Promise<HeldTask | 'gone' | 'stale'> {
    const job = (await this.queue.getJob(taskId)) as TaskJob | undefined;
    if (!job) return 'gone';
    if ((await job.extendLock(token, ms)) !== 1) return 'stale';
    return new HeldTask(job, token, this.name);
  }
}

/** Takes tasks from one queue by hand: BullMQ's worker without a processor. */
export class TaskTaker {
  constructor(
    private readonly worker: StoreWorker<TaskJobData, TaskJobResult>,
    private readonly name: string,
  ) {}

  /** The head task under a new lock `token`, or undefined when none waits. */
  async take(token: string): Promise<HeldTask | undefined> {
    const job = (await this.worker.getNextJob(token, { block: false })) as TaskJob | undefined;
    return job ? new HeldTask(job, token, this.name) : undefined;
  }

  /** Keeps the locks of many tasks of this queue another `ms`, in one store call: the ids lost. */
  async extendLocks(held: HeldTask[], ms: number): Promise<Set<string>> {
    const failed = await this.worker.extendJobLocks(
      held.map((h) => h.taskId),
      held.map((h) => h.token),
      ms,
    );
    return new Set(failed);
  }

  /** Recovers tasks whose lock lapsed while no master held them (e.g. after a crash). */
  startStalledCheck(): Promise<void> {
    return this.worker.startStalledCheckTimer();
  }
}

export interface TakerOptions {
  lockDurationMs: number;
  stalledCheckMs: number;
  /** How many times a task may stall (master lost) before it fails. */
  maxStalls: number;
}

/** Kv keys of tasks answered without the queue (from the result cache) start with this. */
const ANSWER_KV_PREFIX = 'answer:';

/**
 * Every task queue of the store, each opened on first use and shared by
 * every module, and the tasks answered from the result cache: those never
 * enter a queue; they are stored completed, in the kv entries, as long as a
 * completed task is kept.
 */
export class TaskStore {
  private readonly queues = new Map<string, TaskQueueHandle>();
  private readonly takers = new Map<string, TaskTaker>();

  constructor(private readonly store: QueueStore) {}

  get kind(): QueueStore['kind'] {
    return this.store.kind;
  }

  queue(key: QueueKey): TaskQueueHandle {
    const name = queueName(key);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new TaskQueueHandle(this.store.createQueue<TaskJobData, TaskJobResult>(name), name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** The queue a task id names, or undefined for an id that names none. */
  queueOf(taskId: string): TaskQueueHandle | undefined {
    const key = queueKeyOfTaskId(taskId);
    return key ? this.queue(key) : undefined;
  }

  /** The task as stored, or undefined (also for an id that names no queue). */
  async read(taskId: string): Promise<StoredTask | undefined> {
    const queue = this.queueOf(taskId);
    if (!queue) return undefined;
    return (await queue.read(taskId)) ?? (await this.answered(taskId));
  }

  /** Stores a task completed at once (answered from the result cache), without a queue. */
  async recordAnswered(data: TaskJobData, result: TaskJobResult): Promise<StoredTask> {
    const task: StoredTask = {
      data,
      state: 'completed',
      result,
      finishedOn: result.committedAt,
      attemptsMade: 0,
    };
    await this.store.kv.set(`${ANSWER_KV_PREFIX}${data.taskId}`, task, KEEP_COMPLETED.age * 1000);
    return task;
  }

  private async answered(taskId: string): Promise<StoredTask | undefined> {
    const value = (await this.store.kv.get(`${ANSWER_KV_PREFIX}${taskId}`)) as
      | StoredTask
      | undefined;
    return value?.data?.taskId === taskId && value.state === 'completed' ? value : undefined;
  }

  /** A taker for one queue, with the lock and stall rules of running tasks. */
  taker(key: QueueKey, options: TakerOptions): TaskTaker {
    const name = queueName(key);
    let taker = this.takers.get(name);
    if (!taker) {
      const worker = this.store.createWorker<TaskJobData, TaskJobResult>(name, {
        lockDuration: options.lockDurationMs,
        stalledInterval: options.stalledCheckMs,
        maxStalledCount: options.maxStalls,
      });
      taker = new TaskTaker(worker, name);
      this.takers.set(name, taker);
    }
    return taker;
  }

  /**
   * Keeps the locks of running tasks another `ms`: one store call per queue
   * (a task whose queue has no taker here is extended on its own). Returns
   * the tasks whose lock was lost.
   */
  async extendLocks(held: HeldTask[], ms: number): Promise<Set<HeldTask>> {
    const byQueue = new Map<string, HeldTask[]>();
    for (const h of held) byQueue.set(h.queue, [...(byQueue.get(h.queue) ?? []), h]);
    const lost = new Set<HeldTask>();
    await Promise.all(
      [...byQueue].map(async ([name, tasks]) => {
        const taker = this.takers.get(name);
        if (taker) {
          const failed = await taker.extendLocks(tasks, ms);
          for (const h of tasks) if (failed.has(h.taskId)) lost.add(h);
          return;
        }
        await Promise.all(tasks.map(async (h) => (await h.extend(ms)) || lost.add(h)));
      }),
    );
    return lost;
  }

  /** Names of the queues the store holds tasks for, starting with `prefix`. */
  listQueues(prefix: string): Promise<string[]> {
    return this.store.listQueues(prefix);
  }

  /** Counts per queue this master has opened (for metrics). */
  async counts(): Promise<Record<string, Record<string, number>>> {
    const entries = await Promise.all(
      [...this.queues].map(async ([name, queue]) => [name, await queue.counts()] as const),
    );
    return Object.fromEntries(entries);
  }
}
