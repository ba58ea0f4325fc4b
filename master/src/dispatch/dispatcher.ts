/**
 * Owns the lanes, turns fetched jobs into MQTT assignments, keeps their
 * queue locks alive, and takes tasks back from workers that vanish.
 */
import type { Clock } from '../../../common/clock.ts';
import type { Logger } from '../../../common/logger.ts';
import { type QueueKey, queueName } from '../../../proto/src/queues.ts';
import type { Assignment } from '../../../proto/src/schemas/task.ts';
import type { Topics } from '../../../proto/src/topics.ts';
import type { Publisher } from '../broker/publisher.ts';
import type { LostTask, WorkerRegistry } from '../registry/registry.ts';
import type { QueueStore } from '../store/types.ts';
import type { SecretVault } from '../tasks/secret-vault.ts';
import {
  queueKeyOf,
  type TaskJob,
  type TaskJobData,
  type TaskJobResult,
  toTaskView,
} from '../tasks/task-data.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import { Lane } from './lane.ts';
import type { Lease, LeaseTable } from './leases.ts';
import type { DispatchPolicy } from './policies/types.ts';

/** Queue lock held for each running task; renewed at a third of it. */
export const LOCK_DURATION_MS = 30_000;

export interface DispatcherDeps {
  store: QueueStore;
  registry: WorkerRegistry;
  policy: DispatchPolicy;
  leases: LeaseTable;
  events: TaskEvents;
  vault: SecretVault;
  publisher: Publisher;
  topics: Topics;
  clock: Clock;
  log: Logger;
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
    this.lockTimer = this.deps.clock.setInterval(
      () => void this.renewLocks(),
      LOCK_DURATION_MS / 3,
    );
  }

  /** Makes sure a lane runs for this queue and wakes it (a job was just added). */
  lane(key: QueueKey): Lane {
    const name = queueName(key);
    let lane = this.lanes.get(name);
    if (!lane) {
      const bullWorker = this.deps.store.createWorker<TaskJobData, TaskJobResult>(name, {
        lockDuration: LOCK_DURATION_MS,
      });
      lane = new Lane(key, bullWorker, {
        registry: this.deps.registry,
        policy: this.deps.policy,
        clock: this.deps.clock,
        log: this.log,
        assign: (job, workerId, token) => this.assign(job, workerId, token),
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.registry.off('capacity', this.wakeAll);
    this.deps.registry.off('offline', this.onOffline);
    this.deps.registry.off('online', this.onOnline);
    if (this.lockTimer) this.deps.clock.clearInterval(this.lockTimer);
    await Promise.all([...this.lanes.values()].map((lane) => lane.close()));
  }

  private assign(job: TaskJob, workerId: string, token: string): void {
    const { registry, leases, events, vault, clock, topics, publisher } = this.deps;
    const record = registry.get(workerId);
    const data = job.data;
    const attempt = job.attemptsMade + 1;
    const now = clock.now();
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
      deadline: now + data.timeoutMs,
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
        events.emit('failed', lease.sessionId, toTaskView(lease.job, 'failed'));
      } else {
        events.emit('queued', lease.sessionId, {
          taskId: lease.taskId,
          waitingFor: 'retrying on another worker',
        });
        this.lane(queueKeyOf(lease.job.data));
      }
    } catch (err) {
      this.log.error({ err, taskId: lease.taskId }, 'could not requeue task');
    }
  }

  private async renewLocks(): Promise<void> {
    for (const lease of this.deps.leases.all()) {
      try {
        await lease.job.extendLock(lease.token, LOCK_DURATION_MS);
      } catch (err) {
        this.log.warn({ err, taskId: lease.taskId }, 'lock renewal failed');
      }
    }
  }
}
