/**
 * Ends tasks without an answer: cancel (user) and timeouts (deadlines). A
 * running task's worker is told on its control topic and its lease is taken
 * back; a queued task is marked and moved to the front of its queue, where the
 * first lane that takes it fails it (BullMQ has no way to fail a job nobody
 * holds), so its ending is durable and no worker ever runs it.
 */
import { UnrecoverableError } from 'bullmq';
import { LRUCache } from 'lru-cache';
import { ConflictError, NotFoundError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { type Control, cancelControl } from '../../../proto/src/schemas/task.ts';
import type { Topics } from '../../../proto/src/topics.ts';
import type { Publisher } from '../broker/publisher.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { SecretVault } from '../tasks/secret-vault.ts';
import { type TaskEnding, type TaskJob, toTaskView } from '../tasks/task-data.ts';
import { StoreUnavailableError } from '../tasks/task-errors.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import type { TaskQueues } from '../tasks/task-queues.ts';
import type { Lease, LeaseTable } from './leases.ts';

export interface StopperDeps {
  leases: LeaseTable;
  registry: WorkerRegistry;
  queues: TaskQueues;
  events: TaskEvents;
  vault: SecretVault;
  publisher: Publisher;
  topics: Topics;
  log: Logger;
  /** Wakes the lane of a task's queue so it takes (and fails) a marked job soon. */
  reap(taskId: string): void;
}

/** Endings asked for but not yet written, by task; a lane that takes such a job fails it. */
const MAX_REQUESTED = 10_000;

export class Stopper {
  private readonly requested = new LRUCache<string, TaskEnding>({ max: MAX_REQUESTED });
  private readonly log: Logger;

  constructor(private readonly deps: StopperDeps) {
    this.log = deps.log.child({ component: 'stopper' });
  }

  /** For TaskService: cancel whatever state the task is in; 'finished' if it already ended. */
  async cancel(taskId: string, reason: string): Promise<'cancelled' | 'finished'> {
    return this.end(taskId, { state: 'cancelled', reason, at: Date.now() });
  }

  async end(taskId: string, ending: TaskEnding): Promise<'cancelled' | 'finished'> {
    this.request(taskId, ending);
    const running = this.deps.leases.get(taskId);
    if (running) {
      await this.endRunning(running, ending);
      return 'cancelled';
    }
    let job: TaskJob | undefined;
    let state: string;
    try {
      job = await this.deps.queues.job(taskId);
      state = job ? await job.getState() : 'unknown';
    } catch (err) {
      throw new StoreUnavailableError({ cause: err });
    }
    if (!job || state === 'unknown') throw new NotFoundError(`no task ${taskId}`);
    if (state === 'completed' || state === 'failed') {
      this.requested.delete(taskId);
      if (ending.state === 'cancelled') throw new ConflictError(`task ${taskId} already ${state}`);
      return 'finished';
    }
    const lease = this.deps.leases.get(taskId); // assigned while we read?
    if (lease) {
      await this.endRunning(lease, ending);
      return 'cancelled';
    }
    try {
      await job.updateData({ ...job.data, ended: ending });
      // Priority 0 sorts before every task priority: the next take of this queue gets it. An
      // active job (a previous master's, not adopted yet) keeps 0 for when it stalls back.
      const head = job.changePriority({ priority: 0 });
      await (state === 'active' ? head.catch(() => undefined) : head);
    } catch (err) {
      this.log.warn({ err, taskId }, 'could not mark the task as ended');
      throw new StoreUnavailableError({ cause: err });
    }
    this.log.info({ taskId, state, ending: ending.state, reason: ending.reason }, 'task ending');
    this.deps.reap(taskId);
    return 'cancelled';
  }

  /** The ending a lane must apply to a job it just took, if any. */
  endingOf(job: TaskJob): TaskEnding | undefined {
    return job.data.ended ?? this.requested.get(job.id ?? '');
  }

  /** A lane took a job that must end: fail it with its reason while holding its lock. */
  async finishTaken(job: TaskJob, token: string, ending: TaskEnding): Promise<void> {
    const taskId = job.data.taskId;
    try {
      if (!job.data.ended) await job.updateData({ ...job.data, ended: ending });
      job.data = { ...job.data, ended: ending };
      await job.moveToFailed(new UnrecoverableError(ending.reason), token, false);
    } catch (err) {
      this.log.error({ err, taskId }, 'could not end the task; it will be taken again');
      return;
    }
    this.announce(job, ending);
  }

  /** Takes a running attempt back from its worker and ends the task. */
  async endRunning(lease: Lease, ending: TaskEnding): Promise<void> {
    const { leases, registry } = this.deps;
    if (!leases.settle(lease)) return;
    this.tellWorker(lease.workerId, cancelControl(lease));
    const job = lease.job;
    try {
      await job.updateData({ ...job.data, ended: ending });
      job.data = { ...job.data, ended: ending };
      await job.moveToFailed(new UnrecoverableError(ending.reason), lease.token, false);
      leases.unsettle(lease, false);
    } catch (err) {
      this.log.error({ err, taskId: lease.taskId }, 'could not end the running task');
      // Keep it fenced to this attempt: its worker reports "cancelled", which then fails it.
      leases.unsettle(lease, true);
      throw new StoreUnavailableError({ cause: err });
    }
    // The slot stays taken until the end is stored: a failure above keeps the lease as it was.
    registry.release(lease.workerId, lease.taskId);
    this.announce(job, ending);
  }

  /** Tells a worker to stop an attempt (or anything else on its control topic). */
  tellWorker(workerId: string, control: Control): void {
    const { publisher, topics } = this.deps;
    publisher.publish(topics.control(workerId), JSON.stringify(control), 1).catch((err) => {
      this.log.warn({ err, workerId, control: control.type }, 'control message not delivered');
    });
  }

  private request(taskId: string, ending: TaskEnding): void {
    this.requested.set(taskId, ending);
  }

  private announce(job: TaskJob, ending: TaskEnding): void {
    const taskId = job.data.taskId;
    this.requested.delete(taskId);
    this.deps.vault.drop(taskId);
    job.failedReason = ending.reason;
    job.finishedOn = Date.now();
    this.log.info({ taskId, state: ending.state, reason: ending.reason }, 'task ended');
    this.deps.events.emit('failed', job.data.sessionId, toTaskView(job, 'failed'));
  }
}
