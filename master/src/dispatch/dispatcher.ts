/**
 * Owns the lanes (one per queue), keeps the store locks of running tasks
 * alive, and tells submissions where a new task goes in its queue's order.
 * What happens to a task a lane takes is the task lifecycle's business.
 */
import type { Logger } from '../../../common/logger.ts';
import {
  parseQueueName,
  QUEUE_PREFIX,
  type QueueKey,
  queueName,
} from '../../../proto/src/queues.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { HeldTask, TaskStore } from '../store/task-store.ts';
import { fairnessKey } from '../tasks/fair-priority.ts';
import type { TaskLifecycle } from '../tasks/lifecycle.ts';
import type { DispatchGate } from './gate.ts';
import { Lane } from './lane.ts';
import type { LeaseTable } from './leases.ts';
import type { DispatchPolicy } from './policies/types.ts';

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
  store: TaskStore;
  registry: WorkerRegistry;
  policy: DispatchPolicy;
  /** Running attempts, whose locks are kept alive (the lifecycle owns them). */
  leases: LeaseTable;
  lifecycle: TaskLifecycle;
  log: Logger;
  /** How many times a task may stall (master lost) before it fails. */
  maxStalls: number;
  /** The operator's word on dispatch (fleet control): stopped, drained workers. */
  gate?: DispatchGate;
}

/** Where a new (or re-prioritized) task goes in its queue; `settle` once the store has it. */
export interface QueuePlace {
  order: number;
  settle(): void;
}

export class Dispatcher {
  private readonly lanes = new Map<string, Lane>();
  private readonly log: Logger;
  private lockTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly offerCapacity = () => {
    for (const lane of this.lanes.values()) lane.offerCapacity();
  };
  private readonly onOffline = (workerId: string) => this.deps.policy.forget?.(workerId);
  /**
   * A worker that comes online may serve queues nobody has submitted to since
   * a restart: those lanes open (and look). A lane that is open already is
   * only offered the capacity, so ten thousand workers connecting do not
   * each make every lane take from the store.
   */
  private readonly onOnline = (workerId: string) => {
    const record = this.deps.registry.get(workerId);
    if (!record) return;
    for (const model of record.status.models) {
      this.openOrOffer({ capability: 'any', model });
      if (record.status.kind === 'gpu') this.openOrOffer({ capability: 'gpu', model });
    }
  };
  private readonly onEnding = (key: QueueKey) => this.reap(key);
  /** Dispatch may take again (a resume): every lane looks at its queue. */
  private readonly onGateOpen = () => {
    for (const lane of this.lanes.values()) lane.wake();
  };
  private readonly onRetrying = (key: QueueKey) => void this.lane(key);

  constructor(private readonly deps: DispatcherDeps) {
    this.log = deps.log.child({ component: 'dispatch' });
  }

  start(): void {
    const { registry, lifecycle } = this.deps;
    registry.on('capacity', this.offerCapacity);
    registry.on('offline', this.onOffline);
    registry.on('online', this.onOnline);
    // A live config may add models: their lanes open as for a worker coming online.
    registry.on('updated', this.onOnline);
    this.deps.gate?.on('open', this.onGateOpen);
    lifecycle.on('ending', this.onEnding);
    lifecycle.on('retrying', this.onRetrying);
    for (const record of registry.list()) this.onOnline(record.status.id);
    this.lockTimer = setInterval(() => void this.renewLocks(), LOCK_RENEW_MS);
    void this.openStoredLanes();
  }

  /**
   * A lane for every queue the store holds tasks for, so that after a restart
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

  /** Makes sure a lane runs for this queue and wakes it: work may wait there. */
  private lane(key: QueueKey): Lane {
    const lane = this.laneFor(key);
    lane.wake();
    return lane;
  }

  /** Wakes a lane that is new; offers an open one the capacity. */
  private openOrOffer(key: QueueKey): void {
    const open = this.lanes.get(queueName(key));
    if (open) open.offerCapacity();
    else this.lane(key);
  }

  /** The queue's lane, opened (and started) when there is none yet. */
  private laneFor(key: QueueKey): Lane {
    const name = queueName(key);
    let lane = this.lanes.get(name);
    if (!lane) {
      const { store, registry, policy, lifecycle, maxStalls, gate } = this.deps;
      const taker = store.taker(key, {
        lockDurationMs: LOCK_DURATION_MS,
        stalledCheckMs: STALLED_CHECK_MS,
        maxStalls,
      });
      lane = new Lane(key, {
        registry,
        policy,
        log: this.log,
        taker,
        queue: store.queue(key),
        taken: (held, workerId) => lifecycle.taken(held, workerId),
        gate,
      });
      this.lanes.set(name, lane);
      if (!this.closed) lane.start();
      // Recovers tasks whose lock expired while no master held them (e.g. after a crash).
      taker.startStalledCheck().catch((err) => this.log.warn({ err }, 'stalled check failed'));
    }
    return lane;
  }

  /**
   * Where a task of `priority` from this session/tenant goes in the queue
   * (a new fairness round). Submissions and re-prioritizations ask; `labels`
   * teach a lane opened from a task id what its queue requires.
   */
  place(key: QueueKey, priority: number, who: { sessionId?: string; tenant?: string }): QueuePlace {
    const lane = this.laneFor(key);
    lane.know(key.labels);
    const fairness = lane.fairness;
    return {
      order: fairness.admit(priority, fairnessKey(who.sessionId, who.tenant)),
      settle: () => fairness.settle(),
    };
  }

  /**
   * A task was added to this queue: its lane wakes. Says why it must wait
   * when nobody online can serve the queue at all.
   */
  added(key: QueueKey): string | undefined {
    const lane = this.lane(key);
    return lane.unservable() ? `no online worker serves ${lane.describeNeed()} yet` : undefined;
  }

  /** Wakes a lane's reaper: tasks that must end wait at the head of its queue. */
  reap(key: QueueKey): void {
    this.lane(key).reap();
  }

  /** Queues that have a lane. */
  laneKeys(): QueueKey[] {
    return [...this.lanes.values()].map((lane) => lane.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const { registry, lifecycle } = this.deps;
    registry.off('capacity', this.offerCapacity);
    registry.off('offline', this.onOffline);
    registry.off('online', this.onOnline);
    registry.off('updated', this.onOnline);
    this.deps.gate?.off('open', this.onGateOpen);
    lifecycle.off('ending', this.onEnding);
    lifecycle.off('retrying', this.onRetrying);
    if (this.lockTimer) clearInterval(this.lockTimer);
    await Promise.all([...this.lanes.values()].map((lane) => lane.close()));
  }

  /** One store call per queue for every lock held here (not one per running task). */
  private async renewLocks(): Promise<void> {
    const leases = this.deps.leases.all();
    if (leases.length === 0) return;
    let lost: Set<HeldTask>;
    try {
      lost = await this.deps.store.extendLocks(
        leases.map((lease) => lease.held),
        LOCK_DURATION_MS,
      );
    } catch (err) {
      this.log.warn({ err, leases: leases.length }, 'lock renewal failed; retrying');
      return;
    }
    for (const lease of leases) {
      if (lost.has(lease.held)) await this.deps.lifecycle.lockLapsed(lease);
    }
  }
}
