/**
 * Adopting running attempts the master does not know: after a master restart
 * the workers keep running their tasks and name them (with their leases) in
 * every heartbeat, and report results as soon as the master is back. If the
 * store still holds that job under that lease (the lock token), the new master
 * renews the lock and takes the lease over; otherwise the attempt is stale
 * (its job was requeued, finished or cancelled) and the worker is told to stop.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../../common/logger.ts';
import { cancelControl } from '../../../proto/src/schemas/task.ts';
import type { ActiveLease } from '../../../proto/src/schemas/worker.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import type { TaskQueues } from '../tasks/task-queues.ts';
import { type Lease, type LeaseTable, leaseMadeFor } from './leases.ts';
import type { Stopper } from './stopper.ts';

export interface AdopterDeps {
  leases: LeaseTable;
  registry: WorkerRegistry;
  queues: TaskQueues;
  events: TaskEvents;
  stopper: Stopper;
  log: Logger;
  lockDurationMs: number;
}

/** A stale attempt is told to stop at most this often. */
const STOP_REPEAT_MS = 5_000;
/** Stale attempts whose last stop is remembered (for STOP_REPEAT_MS). */
const MAX_STOPPED = 10_000;

export type AdoptOutcome =
  | { lease: Lease }
  | { reason: 'unknown_task' | 'stale_lease' | 'store_unavailable' };

export class Adopter {
  private readonly inFlight = new Map<string, Promise<AdoptOutcome>>();
  private readonly stopped = new LRUCache<string, number>({ max: MAX_STOPPED });
  private readonly log: Logger;

  constructor(private readonly deps: AdopterDeps) {
    this.log = deps.log.child({ component: 'adoption' });
  }

  /** A heartbeat's list of running attempts: confirm ours, adopt unknown ones, stop stale ones. */
  onActive(workerId: string, active: ActiveLease[]): void {
    for (const item of active) {
      const lease = this.deps.leases.get(item.taskId);
      if (lease && lease.workerId === workerId && lease.attempt === item.attempt) {
        lease.confirmed = true;
      } else if (lease) {
        this.stop(workerId, item);
      } else if (item.lease && !this.deps.leases.wasSettled(item.taskId, item.attempt)) {
        void this.adopt(workerId, { ...item, lease: item.lease });
      }
    }
  }

  /** Adopts one attempt if the store still holds it under this lease. Concurrent calls share the work. */
  adopt(workerId: string, item: Required<ActiveLease>): Promise<AdoptOutcome> {
    const key = `${item.taskId}#${item.attempt}#${item.lease}`;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.tryAdopt(workerId, item).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async tryAdopt(workerId: string, item: Required<ActiveLease>): Promise<AdoptOutcome> {
    // The worker's slot is taken while we look: no new task may land on it meanwhile.
    const hold = `adopt:${item.taskId}`;
    this.deps.registry.reserve(workerId, hold, 0, false);
    try {
      return await this.lookUp(workerId, item);
    } finally {
      this.deps.registry.release(workerId, hold);
    }
  }

  private async lookUp(workerId: string, item: Required<ActiveLease>): Promise<AdoptOutcome> {
    const { leases, registry, queues, stopper } = this.deps;
    if (leases.isSettling(item.taskId)) return { reason: 'stale_lease' };
    // A lease names the worker it was made for: another worker holding it learned it somewhere.
    if (!leaseMadeFor(item.lease, workerId)) {
      this.stop(workerId, item);
      return { reason: 'stale_lease' };
    }
    const known = leases.get(item.taskId);
    if (known) {
      return known.token === item.lease && known.workerId === workerId
        ? { lease: known }
        : { reason: 'stale_lease' };
    }
    let renewed: boolean;
    const job = await queues.job(item.taskId).catch(() => null);
    if (job === null) return { reason: 'store_unavailable' };
    if (!job) {
      this.stop(workerId, item);
      return { reason: 'unknown_task' };
    }
    try {
      renewed = (await job.extendLock(item.lease, this.deps.lockDurationMs)) === 1;
    } catch {
      return { reason: 'store_unavailable' };
    }
    const record = registry.get(workerId);
    if (!renewed || record?.state !== 'online') {
      this.stop(workerId, item);
      return { reason: 'stale_lease' };
    }
    const raced = leases.get(item.taskId);
    if (raced) return raced.token === item.lease ? { lease: raced } : { reason: 'stale_lease' };
    const lease: Lease = {
      taskId: item.taskId,
      attempt: item.attempt,
      token: item.lease,
      workerId,
      workerKind: record.status.kind,
      job,
      sessionId: job.data.sessionId,
      assignedAt: Date.now(),
      nextSeq: 0,
      confirmed: true,
    };
    leases.set(lease);
    registry.reserve(workerId, item.taskId, item.attempt);
    this.log.info({ taskId: item.taskId, attempt: item.attempt, workerId }, 'running task adopted');
    const ending = stopper.endingOf(job);
    if (ending) {
      await stopper.endRunning(lease, ending).catch(() => undefined);
      return { reason: 'stale_lease' };
    }
    this.deps.events.emit('assigned', lease.sessionId, {
      taskId: lease.taskId,
      attempt: lease.attempt,
      workerId,
      workerKind: lease.workerKind,
    });
    return { lease };
  }

  private stop(workerId: string, item: ActiveLease): void {
    const key = `${workerId}/${item.taskId}#${item.attempt}`;
    const now = Date.now();
    if (now - (this.stopped.get(key) ?? Number.NEGATIVE_INFINITY) < STOP_REPEAT_MS) return;
    this.stopped.set(key, now);
    this.log.info(
      { taskId: item.taskId, attempt: item.attempt, workerId },
      'stale attempt stopped',
    );
    this.deps.stopper.tellWorker(workerId, cancelControl(item));
  }
}
