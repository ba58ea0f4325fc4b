/**
 * The deadline sweeper: once a second it ends running tasks past their
 * deadline (the worker normally reports the timeout itself; this covers a
 * worker that hangs), takes back assignments no worker confirmed (lost on the
 * way, e.g. during a broker restart), and every few seconds ends queued
 * tasks whose time ran out while no worker could take them.
 */
import type { Logger } from '../../../common/logger.ts';
import type { QueueKey } from '../../../proto/src/queues.ts';
import { cancelControl } from '../../../proto/src/schemas/task.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import { deadlineOf, type TaskJob } from '../tasks/task-data.ts';
import type { TaskQueues } from '../tasks/task-queues.ts';
import type { Lease, LeaseTable } from './leases.ts';
import type { Stopper } from './stopper.ts';

export const SWEEP_MS = 1_000;
/** The worker enforces the deadline itself; the master steps in after this grace. */
export const DEADLINE_GRACE_MS = 3_000;
/**
 * An assignment no heartbeat or report has confirmed after this long (or
 * three of the worker's heartbeat intervals, if longer) is taken back.
 */
export const CONFIRM_MS = 5_000;
/** Queued tasks are checked for expiry every this many sweeps, this many per queue. */
const QUEUED_EVERY = 2;
const QUEUED_SCAN_LIMIT = 1_000;

export interface DeadlineDeps {
  leases: LeaseTable;
  registry: WorkerRegistry;
  queues: TaskQueues;
  stopper: Stopper;
  log: Logger;
  /** Queues with a lane (the ones worth scanning). */
  laneKeys(): QueueKey[];
  requeue(lease: Lease, why: string): Promise<void>;
  /** Wakes a lane's reaper: jobs that must end (or come from the cache) wait in its queue. */
  reap(key: QueueKey): void;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

export class DeadlineSweeper {
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private busy = false;
  private readonly log: Logger;

  constructor(private readonly deps: DeadlineDeps) {
    this.log = deps.log.child({ component: 'deadlines' });
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), SWEEP_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async sweep(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      this.sweepRunning();
      this.ticks += 1;
      if (this.ticks % QUEUED_EVERY === 0) await this.sweepQueued();
    } catch (err) {
      this.log.warn({ err }, 'deadline sweep failed');
    } finally {
      this.busy = false;
    }
  }

  private sweepRunning(): void {
    const { leases, registry, stopper } = this.deps;
    const now = Date.now();
    // While the master cannot hear the broker, silence proves nothing about workers.
    const hearing = !registry.partitioned();
    for (const lease of leases.all()) {
      const data = lease.job.data;
      if (now > deadlineOf(data) + DEADLINE_GRACE_MS) {
        const ending = {
          state: 'failed' as const,
          reason: `timed out after ${seconds(data.timeoutMs)}`,
          at: now,
        };
        stopper.endRunning(lease, ending).catch(() => undefined);
      } else if (hearing && !lease.confirmed && now - lease.assignedAt > this.confirmMs(lease)) {
        stopper.tellWorker(lease.workerId, cancelControl(lease));
        void this.deps.requeue(lease, `worker ${lease.workerId} never confirmed the assignment`);
      }
    }
  }

  private confirmMs(lease: Lease): number {
    const heartbeatMs = this.deps.registry.get(lease.workerId)?.status.heartbeatMs ?? 0;
    return Math.max(CONFIRM_MS, 3 * heartbeatMs);
  }

  private async sweepQueued(): Promise<void> {
    const now = Date.now();
    for (const key of this.deps.laneKeys()) {
      const queue = this.deps.queues.get(key);
      const jobs = (await queue.getJobs(
        ['prioritized', 'wait', 'delayed'],
        0,
        QUEUED_SCAN_LIMIT - 1,
      )) as TaskJob[];
      // One ended while it was delayed (a retry's backoff) reaches the head only later.
      if (jobs.some((job) => job?.data?.ended || job?.data?.cached)) this.deps.reap(key);
      for (const job of jobs) {
        if (!job?.data || job.data.ended || now <= deadlineOf(job.data)) continue;
        const reason = `timed out after ${seconds(job.data.timeoutMs)} in the queue (no worker took it)`;
        await this.deps.stopper
          .end(job.data.taskId, { state: 'failed', reason, at: now })
          .catch((err) => this.log.warn({ err, taskId: job.data.taskId }, 'could not expire task'));
      }
    }
  }
}
