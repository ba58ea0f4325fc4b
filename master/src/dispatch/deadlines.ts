/**
 * The deadline sweeper: once a second it ends running tasks past their
 * deadline (the worker normally reports the timeout itself; this covers a
 * worker that hangs), takes back assignments no worker confirmed (lost on the
 * way, e.g. during a broker restart), and every few seconds ends queued
 * tasks whose time ran out while no worker could take them.
 */
import type { Logger } from '../../../common/logger.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskStore } from '../store/task-store.ts';
import type { TaskLifecycle } from '../tasks/lifecycle.ts';
import { deadlineOf } from '../tasks/task-data.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { Lease, LeaseTable } from './leases.ts';

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
  store: Pick<TaskStore, 'queue'>;
  lifecycle: Pick<TaskLifecycle, 'end' | 'endRunning' | 'retry'>;
  /** Which queues have a lane (the ones worth scanning), and waking a lane's reaper. */
  dispatcher: Pick<Dispatcher, 'laneKeys' | 'reap'>;
  log: Logger;
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
    const { leases, registry, lifecycle } = this.deps;
    const now = Date.now();
    // While the master cannot hear the broker, silence proves nothing about workers.
    const hearing = !registry.partitioned();
    for (const lease of leases.all()) {
      const data = lease.held.data;
      if (now > deadlineOf(data) + DEADLINE_GRACE_MS) {
        const ending = {
          state: 'failed' as const,
          reason: `timed out after ${seconds(data.timeoutMs)}`,
          at: now,
        };
        lifecycle.endRunning(lease, ending).catch(() => undefined);
      } else if (hearing && !lease.confirmed && now - lease.assignedAt > this.confirmMs(lease)) {
        const why = `worker ${lease.workerId} never confirmed the assignment`;
        void lifecycle.retry(lease, why, true);
      }
    }
  }

  private confirmMs(lease: Lease): number {
    const heartbeatMs = this.deps.registry.get(lease.workerId)?.status.heartbeatMs ?? 0;
    return Math.max(CONFIRM_MS, 3 * heartbeatMs);
  }

  private async sweepQueued(): Promise<void> {
    const { store, lifecycle, dispatcher } = this.deps;
    const now = Date.now();
    for (const key of dispatcher.laneKeys()) {
      const waiting = await store.queue(key).waiting(QUEUED_SCAN_LIMIT);
      // One ended while it was delayed (a retry's backoff) reaches the head only later.
      if (waiting.some((data) => data.ended)) dispatcher.reap(key);
      for (const data of waiting) {
        if (data.ended || now <= deadlineOf(data)) continue;
        const reason = `timed out after ${seconds(data.timeoutMs)} in the queue (no worker took it)`;
        await lifecycle
          .end(data.taskId, { state: 'failed', reason, at: now })
          .catch((err) => this.log.warn({ err, taskId: data.taskId }, 'could not expire task'));
      }
    }
  }
}
