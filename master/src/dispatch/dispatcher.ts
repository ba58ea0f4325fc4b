/**
 * Owns the lanes, turns fetched jobs into MQTT assignments, keeps their
 * queue locks alive, and takes tasks back from workers that vanish.
 */
import type { Logger } from '../../../common/logger.ts';
import {
  parseQueueName,
  QUEUE_PREFIX,
  type QueueKey,
  queueName,
} from '../../../proto/src/queues.ts';
import { type Assignment, cancelControl } from '../../../proto/src/schemas/task.ts';
import type { Topics } from '../../../proto/src/topics.ts';
import type { Publisher } from '../broker/publisher.ts';
import { completeFromCache } from '../cache/cached-completion.ts';
import type { LostTask, WorkerRegistry } from '../registry/registry.ts';
import type { QueueStore } from '../store/types.ts';
import type { SecretVault } from '../tasks/secret-vault.ts';
import {
  attemptOf,
  deadlineOf,
  queueKeyOf,
  type TaskJob,
  type TaskJobData,
  type TaskJobResult,
  toTaskView,
} from '../tasks/task-data.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import type { TaskQueues } from '../tasks/task-queues.ts';
import { Lane } from './lane.ts';
import type { Lease, LeaseTable } from './leases.ts';
import type { DispatchPolicy } from './policies/types.ts';
import type { Stopper } from './stopper.ts';

/**
 * Queue lock held for each running task, renewed every LOCK_RENEW_MS. A lock
 * that lapses (the master died) makes the job stalled: BullMQ's stalled check
 * (every STALLED_CHECK_MS) puts it back in the queue unless a worker's
 * heartbeat lets a restarted master adopt it first.
 */
export const LOCK_DURATION_MS = 15_000;
export const LOCK_RENEW_MS = 3_000;
export const STALLED_CHECK_MS = 5_000;

export interface DispatcherDeps {
  store: QueueStore;
  registry: WorkerRegistry;
  policy: DispatchPolicy;
  leases: LeaseTable;
  events: TaskEvents;
  vault: SecretVault;
  publisher: Publisher;
  topics: Topics;
  stopper: Stopper;
  queues: TaskQueues;
  log: Logger;
  /** How many times a task may stall (master lost) before it fails. */
  maxStalls: number;
}

export class Dispatcher {
  private readonly lanes = new Map<string, Lane>();
  private readonly log: Logger;
  private lockTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly wakeAll = () => {
    for (const lane of this.lanes.values()) lane.signal.notify();
  };
  private readonly onOffline = (workerId: string, reason: string, lost: LostTask[]) =>
    this.revoke(workerId, reason, lost);
  /** A worker that comes online may serve queues nobody has submitted to since a restart. */
  private readonly onOnline = (workerId: string) => {
    const record = this.deps.registry.get(workerId);
    if (!record) return;
    for (const model of record.status.models) {
      this.lane({ capability: 'any', model });
      if (record.status.kind === 'gpu') this.lane({ capability: 'gpu', model });
    }
  };

  constructor(private readonly deps: DispatcherDeps) {
    this.log = deps.log.child({ component: 'dispatch' });
  }

  start(): void {
    this.deps.registry.on('capacity', this.wakeAll);
    this.deps.registry.on('offline', this.onOffline);
    this.deps.registry.on('online', this.onOnline);
    for (const record of this.deps.registry.list()) this.onOnline(record.status.id);
    this.lockTimer = setInterval(() => void this.renewLocks(), LOCK_RENEW_MS);
    void this.openStoredLanes();
  }

  /**
   * A lane for every queue the store holds jobs for, so that after a restart
   * tasks for a model or labels nobody serves yet still time out, end when
   * cancelled, and run once a capable worker appears.
   */
  private async openStoredLanes(): Promise<void> {
    try {
      const names = await this.deps.store.listQueues(`${QUEUE_PREFIX}.`);
      for (const name of names) {
        const key = parseQueueName(name);
        if (key && !this.closed) this.lane(key);
      }
    } catch (err) {
      this.log.warn({ err }, 'could not list the stored queues; lanes open as tasks come');
    }
  }

  /** Makes sure a lane runs for this queue and wakes it (a job was just added). */
  lane(key: QueueKey): Lane {
    const name = queueName(key);
    let lane = this.lanes.get(name);
    if (!lane) {
      const bullWorker = this.deps.store.createWorker<TaskJobData, TaskJobResult>(name, {
        lockDuration: LOCK_DURATION_MS,
        stalledInterval: STALLED_CHECK_MS,
        maxStalledCount: this.deps.maxStalls,
      });
      lane = new Lane(key, bullWorker, {
        registry: this.deps.registry,
        policy: this.deps.policy,
        log: this.log,
        assign: (job, workerId, token) => this.assign(job, workerId, token),
        reap: (job, token) => this.reap(job, token),
        headCount: async () => (await this.deps.queues.get(key).getJobCounts('wait')).wait ?? 0,
        peek: async () => {
          const queue = this.deps.queues.get(key);
          const [job] = await queue.getJobs(['prioritized', 'wait', 'delayed', 'active'], 0, 0);
          return (job ?? (await queue.getJobs(['completed', 'failed'], 0, 0))[0]) as
            | TaskJob
            | undefined;
        },
      });
      this.lanes.set(name, lane);
      if (!this.closed) lane.start();
      // Recovers jobs whose lock expired while no master held them (e.g. after a crash).
      bullWorker
        .startStalledCheckTimer()
        .catch((err) => this.log.warn({ err }, 'stalled check failed'));
    }
    lane.signal.notify();
    return lane;
  }

  /** Queues that have a lane. */
  laneKeys(): QueueKey[] {
    return [...this.lanes.values()].map((lane) => lane.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.registry.off('capacity', this.wakeAll);
    this.deps.registry.off('offline', this.onOffline);
    this.deps.registry.off('online', this.onOnline);
    if (this.lockTimer) clearInterval(this.lockTimer);
    await Promise.all([...this.lanes.values()].map((lane) => lane.close()));
  }

  /**
   * A lane took a job that needs no worker, or took one with no worker in mind: fail it if it
   * must end, complete it if it carries a cached answer; false when it was put back.
   */
  private async reap(job: TaskJob, token: string): Promise<boolean> {
    const ending = this.deps.stopper.endingOf(job);
    if (ending) {
      await this.deps.stopper.finishTaken(job, token, ending);
      return true;
    }
    if (job.data.cached) return completeFromCache(job, token, this.deps);
    await job.moveToWait(token).catch((err) => this.log.warn({ err }, 'could not put a job back'));
    return false;
  }

  private assign(job: TaskJob, workerId: string, token: string): void {
    const { registry, leases, events, vault, topics, publisher, stopper } = this.deps;
    const data = job.data;
    const ending = stopper.endingOf(job);
    if (ending) {
      void stopper.finishTaken(job, token, ending);
      return;
    }
    const record = registry.get(workerId);
    const attempt = attemptOf(job);
    const now = Date.now();
    const lease: Lease = {
      taskId: data.taskId,
      attempt,
      token,
      workerId,
      workerKind: record?.status.kind ?? 'cpu',
      job,
      sessionId: data.sessionId,
      assignedAt: now,
      nextSeq: 0,
      confirmed: false,
    };
    leases.set(lease);
    registry.reserve(workerId, data.taskId, attempt);
    const assignment: Assignment = {
      taskId: data.taskId,
      attempt,
      lease: token,
      model: data.model,
      prompt: data.prompt,
      messages: data.messages,
      params: data.params,
      apiKey: vault.get(data.taskId),
      deadline: deadlineOf(data),
      queuedAt: data.submittedAt,
    };
    this.log.info({ taskId: data.taskId, attempt, workerId }, 'task assigned');
    events.emit('assigned', data.sessionId, {
      taskId: data.taskId,
      attempt,
      workerId,
      workerKind: lease.workerKind,
    });
    publisher.publish(topics.tasks(workerId), JSON.stringify(assignment), 1).catch((err) => {
      this.log.warn({ err, taskId: data.taskId, workerId }, 'assignment publish failed');
      void this.requeue(lease, 'assignment could not be delivered');
    });
  }

  /** A worker is gone: its attempts are revoked and the tasks go back to the queue. */
  private revoke(workerId: string, reason: string, lost: LostTask[]): void {
    this.deps.policy.forget?.(workerId);
    for (const { taskId, attempt } of lost) {
      const lease = this.deps.leases.get(taskId);
      if (!lease || lease.workerId !== workerId || lease.attempt !== attempt) continue;
      void this.requeue(lease, `worker ${workerId} lost (${reason})`);
    }
  }

  /** Fails the attempt as retryable: BullMQ retries it with backoff while attempts remain. */
  async requeue(lease: Lease, why: string): Promise<void> {
    const { leases, registry, events } = this.deps;
    if (!leases.delete(lease)) return;
    registry.release(lease.workerId, lease.taskId);
    try {
      await lease.job.moveToFailed(new Error(why), lease.token, false);
      const state = await lease.job.getState();
      if (state === 'failed') {
        this.deps.vault.drop(lease.taskId);
        this.log.warn({ taskId: lease.taskId, reason: why }, 'task failed: no attempts left');
        events.emit('failed', lease.sessionId, toTaskView(lease.job, 'failed'));
      } else {
        events.emit('retrying', lease.sessionId, {
          taskId: lease.taskId,
          attempt: lease.attempt,
          reason: why,
        });
        this.lane(queueKeyOf(lease.job.data));
      }
    } catch (err) {
      this.log.error({ err, taskId: lease.taskId }, 'could not requeue task');
    }
  }

  private async renewLocks(): Promise<void> {
    await Promise.all(this.deps.leases.all().map((lease) => this.renew(lease)));
  }

  private async renew(lease: Lease): Promise<void> {
    const { leases, registry, events, stopper } = this.deps;
    let held: boolean;
    try {
      held = (await lease.job.extendLock(lease.token, LOCK_DURATION_MS)) === 1;
    } catch (err) {
      this.log.warn({ err, taskId: lease.taskId }, 'lock renewal failed; retrying');
      return;
    }
    if (held || !leases.delete(lease)) return;
    // The lock lapsed (the store was away too long): the job is back in the queue, or failed.
    this.log.warn({ taskId: lease.taskId, workerId: lease.workerId }, 'lease lost: lock lapsed');
    registry.release(lease.workerId, lease.taskId);
    stopper.tellWorker(lease.workerId, cancelControl(lease));
    const job = await this.deps.queues.job(lease.taskId).catch(() => undefined);
    if (job?.finishedOn) {
      // Failed for stalling too often (a completion elsewhere already announced itself).
      if (!job.returnvalue) events.emit('failed', lease.sessionId, toTaskView(job, 'failed'));
      this.deps.vault.drop(lease.taskId);
      return;
    }
    events.emit('retrying', lease.sessionId, {
      taskId: lease.taskId,
      attempt: lease.attempt,
      reason: 'the queue lock lapsed',
    });
  }
}
