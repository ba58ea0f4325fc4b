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
import type { SlotHold } from '../registry/worker-record.ts';
import type { TaskStore } from '../store/task-store.ts';
import type { TaskLifecycle } from '../tasks/lifecycle.ts';
import { type Lease, type LeaseTable, leaseMadeFor } from './leases.ts';

export interface AdopterDeps {
  leases: LeaseTable;
  registry: WorkerRegistry;
  store: Pick<TaskStore, 'queueOf'>;
  /** Makes an adopted attempt this master's (or ends it), and tells workers to stop. */
  lifecycle: Pick<TaskLifecycle, 'adopted' | 'tellWorker'>;
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
    // The worker's slot is held while we look: no new task may land on it meanwhile.
    const hold: SlotHold = { by: `adoption of ${item.taskId}` };
    this.deps.registry.hold(workerId, hold);
    try {
      return await this.lookUp(workerId, item);
    } finally {
      this.deps.registry.unhold(workerId, hold, true);
    }
  }

  private async lookUp(workerId: string, item: Required<ActiveLease>): Promise<AdoptOutcome> {
    const { leases, registry, store, lifecycle } = this.deps;
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
    const queue = store.queueOf(item.taskId);
    if (!queue) {
      this.stop(workerId, item);
      return { reason: 'unknown_task' };
    }
    let held: Awaited<ReturnType<typeof queue.adopt>>;
    try {
      held = await queue.adopt(item.taskId, item.lease, this.deps.lockDurationMs);
    } catch {
      return { reason: 'store_unavailable' };
    }
    if (held === 'gone') {
      this.stop(workerId, item);
      return { reason: 'unknown_task' };
    }
    if (held === 'stale' || registry.get(workerId)?.state !== 'online') {
      this.stop(workerId, item);
      return { reason: 'stale_lease' };
    }
    const raced = leases.get(item.taskId);
    if (raced) return raced.token === item.lease ? { lease: raced } : { reason: 'stale_lease' };
    const lease = await lifecycle.adopted(held, workerId);
    return lease ? { lease } : { reason: 'stale_lease' };
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
    this.deps.lifecycle.tellWorker(workerId, cancelControl(item));
  }
}
