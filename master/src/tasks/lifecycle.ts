/**
 * The one owner of a task's life. Every transition goes through here, with
 * its side effects in one place and in one order; nobody else writes a
 * task's outcome to the store, frees a slot for a task, drops a task's secret
 * or announces a task's end.
 *
 * | from    | what happens                                   | to                    |
 * |---------|------------------------------------------------|-----------------------|
 * | —       | submitted (TaskService added it)               | queued                |
 * | —       | submitted, answered from the result cache      | completed             |
 * | queued  | a lane takes it with a worker's slot reserved  | running               |
 * | queued  | cancelled / no worker took it in time          | queued, marked ending |
 * | queued  | a lane takes a task marked ending              | cancelled / failed    |
 * | running | the worker reports the answer                  | completed             |
 * | running | the worker reports a final error               | failed                |
 * | running | a retryable error; worker lost; assignment     | queued again (retry), |
 * |         | unconfirmed or undeliverable                   | failed if none left   |
 * | running | cancelled / past its deadline                  | cancelled / failed    |
 * | running | its store lock lapsed (the store was away)     | queued again / failed |
 * | (none)  | a worker names it with its lease after a       | running (or ended, if |
 * |         | master restart, and the store confirms it      | marked ending)        |
 *
 * Ending a running attempt (completed, failed, cancelled, timed out) always
 * runs: settle its lease (a duplicate report meanwhile is stale) → [tell the
 * worker to stop] → write the outcome to the store → free the worker's slot →
 * drop the task's secret → log → emit the event. Giving an attempt up
 * (retry) drops the lease instead of settling it: the worker is told to stop
 * and a report from it later is stale.
 *
 * A task nobody holds cannot be failed in the store, so an ending of a queued
 * task is written into its data and the task moved to the head of its queue:
 * the lane that takes it next ends it (it emits `ending` to wake that lane).
 */
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import { ConflictError, NotFoundError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import type { QueueKey } from '../../../proto/src/queues.ts';
import {
  type Assignment,
  type Control,
  cancelControl,
  MAX_CONTINUATION_CHARS,
} from '../../../proto/src/schemas/task.ts';
import type { Topics } from '../../../proto/src/topics.ts';
import type { Publisher } from '../broker/publisher.ts';
import type { CachedAnswer, ResultCache } from '../cache/result-cache.ts';
import type { Lease, LeaseTable } from '../dispatch/leases.ts';
import type { DispatchPolicy } from '../dispatch/policies/types.ts';
import type { LostTask, WorkerRegistry } from '../registry/registry.ts';
import type { HeldTask, TaskStore } from '../store/task-store.ts';
import type { SecretVault } from './secret-vault.ts';
import {
  DEFAULT_TENANT,
  deadlineOf,
  queueKeyOf,
  type StoredTask,
  type TaskEnding,
  type TaskJobData,
  type TaskJobResult,
  toTaskView,
} from './task-data.ts';
import { StoreUnavailableError } from './task-errors.ts';
import type { TaskEvents, TaskRecordEvents } from './task-events.ts';

export interface LifecycleDeps {
  store: TaskStore;
  leases: LeaseTable;
  registry: WorkerRegistry;
  events: TaskEvents;
  vault: SecretVault;
  publisher: Publisher;
  topics: Topics;
  /** Learns each worker's processing time from its answers. */
  policy: DispatchPolicy;
  /** Keeps each committed answer for identical later requests (when enabled). */
  cache?: ResultCache;
  /** Hears each submission and each end with the task's whole data (the task history). */
  records?: TaskRecordEvents;
  log: Logger;
}

export interface LifecycleEvents {
  /** A queued task of this queue was marked ending: its lane should take and end it. */
  ending: [key: QueueKey];
  /** A task of this queue goes back to it for another attempt. */
  retrying: [key: QueueKey];
}

/** How a report from a worker ended: stored, or refused. */
export type Outcome = 'stored' | 'stale_lease' | 'store_unavailable';

/** What became of a task a lane took. */
export type TakeOutcome = 'assigned' | 'ended' | 'put_back';

/** Endings asked for but not yet written, by task; a lane that takes such a task ends it. */
const MAX_REQUESTED = 10_000;

export class TaskLifecycle extends EventEmitter<LifecycleEvents> {
  private readonly requested = new LRUCache<string, TaskEnding>({ max: MAX_REQUESTED });
  private readonly log: Logger;
  private readonly onOffline = (workerId: string, reason: string, lost: LostTask[]) =>
    this.revoke(workerId, reason, lost);

  constructor(private readonly deps: LifecycleDeps) {
    super();
    this.log = deps.log.child({ component: 'lifecycle' });
  }

  start(): void {
    this.deps.registry.on('offline', this.onOffline);
  }

  stop(): void {
    this.deps.registry.off('offline', this.onOffline);
  }

  // ── — → queued / completed ──────────────────────────────────────────────

  /** The store holds a new task: announce it (`waitingFor` says why no worker takes it yet). */
  queued(data: TaskJobData, clientId: string | undefined, waitingFor: string | undefined): void {
    const { taskId, model, gpu, labels, priority, sessionId } = data;
    this.log.info({ taskId, model, gpu, labels, priority, sessionId }, 'task queued');
    this.deps.records?.emit('submitted', data);
    this.deps.events.emit('queued', sessionId, { taskId, clientId, waitingFor });
  }

  /** A submission answered from the result cache: stored completed at once, no queue, no worker. */
  async answered(data: TaskJobData, cached: CachedAnswer, clientId?: string): Promise<void> {
    const now = Date.now();
    const result: TaskJobResult = {
      text: cached.text,
      attempt: 1,
      assignedAt: now,
      startedAt: now,
      finishedAt: now,
      processingMs: 0,
      committedAt: now,
      usage: cached.usage,
      cache: { hit: true, cachedAt: cached.cachedAt },
    };
    const task = await this.deps.store.recordAnswered(data, result);
    this.log.info(
      { taskId: data.taskId, cachedAt: cached.cachedAt },
      'task answered from the result cache',
    );
    this.deps.records?.emit('submitted', data);
    this.deps.records?.emit('finished', task);
    this.deps.events.emit('queued', data.sessionId, { taskId: data.taskId, clientId });
    this.deps.events.emit('completed', data.sessionId, toTaskView(task));
  }

  // ── queued → running / ended ────────────────────────────────────────────

  /**
   * A lane took a task: with `workerId` (a slot reserved on it) it is
   * assigned, unless it must end; without, it is ended if it must, or put back.
   */
  async taken(held: HeldTask, workerId: string | undefined): Promise<TakeOutcome> {
    const ending = this.endingOf(held.data);
    if (ending) {
      await this.endTaken(held, ending);
      return 'ended';
    }
    if (workerId === undefined) {
      await held.putBack().catch((err) => this.log.warn({ err }, 'could not put a task back'));
      return 'put_back';
    }
    this.assign(held, workerId);
    return 'assigned';
  }

  private assign(held: HeldTask, workerId: string): void {
    const { registry, leases, vault, topics, publisher } = this.deps;
    const data = held.data;
    const lease = this.lease(held, workerId, false);
    // A lost attempt's text is continued where the worker can (else the answer starts over).
    const continueFrom =
      data.partial && registry.get(workerId)?.status.continuation === true
        ? data.partial.text
        : undefined;
    lease.streamed = continueFrom ?? '';
    leases.set(lease);
    registry.reserve(workerId, data.taskId, lease.attempt);
    const assignment: Assignment = {
      taskId: data.taskId,
      attempt: lease.attempt,
      lease: lease.token,
      model: data.model,
      prompt: data.prompt,
      messages: data.messages,
      params: data.params,
      apiKey: vault.get(data.taskId),
      deadline: deadlineOf(data),
      queuedAt: data.submittedAt,
      ...(continueFrom !== undefined && { continueFrom }),
    };
    this.log.info(
      {
        taskId: data.taskId,
        attempt: lease.attempt,
        workerId,
        ...(data.partial && { continues: continueFrom !== undefined }),
      },
      'task assigned',
    );
    this.emitAssigned(lease, continueFrom);
    publisher.publish(topics.tasks(workerId), JSON.stringify(assignment), 1).catch((err) => {
      this.log.warn({ err, taskId: data.taskId, workerId }, 'assignment publish failed');
      void this.retry(lease, 'assignment could not be delivered');
    });
  }

  /** A taken task that must end: failed with its reason while its lock is held. */
  private async endTaken(held: HeldTask, ending: TaskEnding): Promise<void> {
    let task: StoredTask;
    try {
      task = await held.end(ending);
    } catch (err) {
      this.log.error(
        { err, taskId: held.taskId },
        'could not end the task; it will be taken again',
      );
      return;
    }
    this.finished(task);
  }

  // ── (none) → running: adoption after a master restart ───────────────────

  /**
   * The store confirmed a worker's lease on a task this master did not know
   * (`held` is locked under it): the attempt is this master's from now on.
   * Undefined when the task was marked ending meanwhile (it is ended now).
   */
  async adopted(held: HeldTask, workerId: string): Promise<Lease | undefined> {
    const lease = this.lease(held, workerId, true);
    this.deps.leases.set(lease);
    this.deps.registry.reserve(workerId, lease.taskId, lease.attempt);
    this.log.info(
      { taskId: lease.taskId, attempt: lease.attempt, workerId },
      'running task adopted',
    );
    const ending = this.endingOf(held.data);
    if (ending) {
      await this.endRunning(lease, ending).catch(() => undefined);
      return undefined;
    }
    this.emitAssigned(lease);
    return lease;
  }

  // ── running → completed / failed / retrying ─────────────────────────────

  /** The worker's answer: committed once (a duplicate meanwhile is stale). */
  async complete(lease: Lease, result: TaskJobResult): Promise<Outcome> {
    const task = await this.settle(lease, () => lease.held.complete(result));
    if (task === 'stale_lease') return task;
    if (task instanceof StoreUnavailableError) return 'store_unavailable';
    const data = task.data;
    this.deps.policy.observe?.({
      workerId: lease.workerId,
      model: data.model,
      processingMs: result.processingMs,
    });
    if (!data.noCache) {
      const { text, usage } = result;
      this.deps.cache?.remember(
        { ...data, tenant: data.tenant ?? DEFAULT_TENANT },
        { text, usage, workerId: lease.workerId },
      );
    }
    this.log.info(
      {
        taskId: lease.taskId,
        workerId: lease.workerId,
        attempt: lease.attempt,
        processingMs: result.processingMs,
      },
      'task completed',
    );
    this.finished(task);
    return 'stored';
  }

  /** The worker's error: retried when `retryable` (while attempts remain), else final. */
  async fail(lease: Lease, error: string, code: string, retryable: boolean): Promise<Outcome> {
    if (retryable) {
      await this.retry(lease, `${lease.workerId}: ${error}`);
      return 'stored';
    }
    // A provider error (bad key, bad prompt) fails the same way everywhere: do not retry it.
    const task = await this.settle(lease, () => lease.held.fail(error, false));
    if (task === 'stale_lease') return task;
    if (task instanceof StoreUnavailableError) return 'store_unavailable';
    this.log.warn({ taskId: lease.taskId, code, error }, 'task failed');
    this.finished(task);
    return 'stored';
  }

  /**
   * Gives the attempt up: the store retries the task with backoff while
   * attempts remain (else it fails). `stopWorker`: the worker may still run
   * it, so it is told to stop.
   */
  async retry(lease: Lease, why: string, stopWorker = false): Promise<void> {
    const { leases, registry, events } = this.deps;
    if (!leases.delete(lease)) return;
    if (stopWorker) this.tellWorker(lease.workerId, cancelControl(lease));
    registry.release(lease.workerId, lease.taskId);
    let task: StoredTask;
    try {
      task = await lease.held.fail(why, true, this.withPartial(lease));
    } catch (err) {
      // Its lock lapses and the store's stalled check puts it back.
      this.log.error({ err, taskId: lease.taskId }, 'could not requeue task');
      return;
    }
    if (task.state === 'failed') {
      this.log.warn({ taskId: lease.taskId, reason: why }, 'task failed: no attempts left');
      this.finished(task);
      return;
    }
    events.emit('retrying', lease.sessionId, {
      taskId: lease.taskId,
      attempt: lease.attempt,
      reason: why,
    });
    this.emit('retrying', queueKeyOf(task.data));
  }

  /**
   * The task's data for its next attempt: what this one streamed becomes the
   * text to continue (nothing, when it streamed nothing, lost a chunk or
   * streamed more than an assignment carries).
   */
  private withPartial(lease: Lease): TaskJobData {
    const data = lease.held.data;
    const text = lease.streamed;
    if (text && text.length <= MAX_CONTINUATION_CHARS) {
      if (data.partial?.text === text) return data;
      return { ...data, partial: { attempt: lease.attempt, text } };
    }
    if (!data.partial) return data;
    const { partial: _dropped, ...rest } = data;
    return rest;
  }

  /** A worker is gone: its attempts go back to the queue. */
  private revoke(workerId: string, reason: string, lost: LostTask[]): void {
    for (const { taskId, attempt } of lost) {
      const lease = this.deps.leases.get(taskId);
      if (!lease || lease.workerId !== workerId || lease.attempt !== attempt) continue;
      void this.retry(lease, `worker ${workerId} lost (${reason})`);
    }
  }

  /**
   * The attempt's store lock lapsed (the store was away too long): the store
   * has put the task back in the queue, or failed it for stalling too often.
   */
  async lockLapsed(lease: Lease): Promise<void> {
    const { leases, registry, events } = this.deps;
    if (!leases.delete(lease)) return;
    this.log.warn({ taskId: lease.taskId, workerId: lease.workerId }, 'lease lost: lock lapsed');
    this.tellWorker(lease.workerId, cancelControl(lease));
    registry.release(lease.workerId, lease.taskId);
    const task = await this.deps.store.read(lease.taskId).catch(() => undefined);
    if (task?.state === 'completed' || task?.state === 'failed') {
      // Failed for stalling too often (a completion elsewhere already announced itself).
      if (task.state === 'failed') this.finished(task);
      else this.deps.vault.drop(lease.taskId);
      return;
    }
    events.emit('retrying', lease.sessionId, {
      taskId: lease.taskId,
      attempt: lease.attempt,
      reason: 'the queue lock lapsed',
    });
  }

  // ── any → cancelled / failed (cancel, timeout) ──────────────────────────

  /**
   * Ends a task in whatever state it is (cancel, or a timeout) and returns it
   * as ended. A task that had finished already is returned as it is, but a
   * cancel of it is a conflict.
   */
  async end(taskId: string, ending: TaskEnding): Promise<StoredTask> {
    this.requested.set(taskId, ending);
    const running = this.deps.leases.get(taskId);
    if (running) return this.endRunning(running, ending);
    let marked: StoredTask | undefined;
    try {
      marked = await this.deps.store.queueOf(taskId)?.markEnded(taskId, ending);
    } catch (err) {
      this.log.warn({ err, taskId }, 'could not mark the task as ended');
      throw new StoreUnavailableError({ cause: err });
    }
    if (!marked) {
      this.requested.delete(taskId);
      throw new NotFoundError(`no task ${taskId}`);
    }
    if (marked.state === 'completed' || marked.state === 'failed') {
      return this.alreadyEnded(marked, ending);
    }
    // Assigned while it was marked: the lane read it before the mark.
    const lease = this.deps.leases.get(taskId);
    if (lease) return this.endRunning(lease, ending);
    this.log.info(
      { taskId, state: marked.state, ending: ending.state, reason: ending.reason },
      'task ending',
    );
    this.emit('ending', queueKeyOf(marked.data));
    return marked;
  }

  private alreadyEnded(task: StoredTask, ending: TaskEnding): StoredTask {
    this.requested.delete(task.data.taskId);
    if (ending.state === 'cancelled') {
      throw new ConflictError(`task ${task.data.taskId} already ${task.state}`);
    }
    return task;
  }

  /** Takes a running attempt back from its worker and ends the task. */
  async endRunning(lease: Lease, ending: TaskEnding): Promise<StoredTask> {
    this.requested.set(lease.taskId, ending);
    const task = await this.settle(lease, () => {
      this.tellWorker(lease.workerId, cancelControl(lease));
      return lease.held.end(ending);
    });
    if (task === 'stale_lease') {
      // Settled by another report meanwhile: whatever it stores stands.
      const now = await this.deps.store.read(lease.taskId).catch(() => undefined);
      return now ?? { data: lease.held.data, state: 'running', attemptsMade: lease.attempt - 1 };
    }
    if (task instanceof StoreUnavailableError) throw task;
    this.finished(task);
    return task;
  }

  /** The ending a task must take when a lane or an adoption gets it, if any. */
  private endingOf(data: TaskJobData): TaskEnding | undefined {
    return data.ended ?? this.requested.get(data.taskId);
  }

  /** Tells a worker to stop an attempt (or anything else on its control topic). */
  tellWorker(workerId: string, control: Control): void {
    const { publisher, topics } = this.deps;
    publisher.publish(topics.control(workerId), JSON.stringify(control), 1).catch((err) => {
      this.log.warn({ err, workerId, control: control.type }, 'control message not delivered');
    });
  }

  // ── the common steps ────────────────────────────────────────────────────

  private lease(held: HeldTask, workerId: string, confirmed: boolean): Lease {
    return {
      taskId: held.taskId,
      attempt: held.attempt,
      token: held.token,
      workerId,
      workerKind: this.deps.registry.get(workerId)?.status.kind ?? 'cpu',
      held,
      sessionId: held.data.sessionId,
      assignedAt: Date.now(),
      nextSeq: 0,
      // An adopted attempt may have streamed before this master knew it: nothing to continue from.
      streamed: undefined,
      confirmed,
    };
  }

  private emitAssigned(lease: Lease, continuesFrom?: string): void {
    this.deps.events.emit('assigned', lease.sessionId, {
      taskId: lease.taskId,
      attempt: lease.attempt,
      workerId: lease.workerId,
      workerKind: lease.workerKind,
      ...(continuesFrom !== undefined && { continuesFrom }),
    });
  }

  /**
   * Writes a running attempt's outcome: the lease is settled first (anything
   * else for this task meanwhile is stale), and the worker's slot freed only
   * once the outcome is stored. A store that fails keeps the lease as it was,
   * so the worker's report (or the deadline) can try again.
   */
  private async settle(
    lease: Lease,
    write: () => Promise<StoredTask>,
  ): Promise<StoredTask | 'stale_lease' | StoreUnavailableError> {
    const { leases, registry } = this.deps;
    if (!leases.settle(lease)) return 'stale_lease';
    let task: StoredTask;
    try {
      task = await write();
    } catch (err) {
      leases.unsettle(lease, true);
      this.log.error({ err, taskId: lease.taskId }, 'the outcome could not be stored');
      return new StoreUnavailableError({ cause: err });
    }
    leases.unsettle(lease, false);
    registry.release(lease.workerId, lease.taskId);
    return task;
  }

  /** A task ended for good: its secret is dropped and its session hears of it. */
  private finished(task: StoredTask): void {
    const { taskId, sessionId, ended } = task.data;
    this.requested.delete(taskId);
    this.deps.vault.drop(taskId);
    this.deps.records?.emit('finished', task);
    if (task.state === 'completed') {
      this.deps.events.emit('completed', sessionId, toTaskView(task));
      return;
    }
    if (ended) this.log.info({ taskId, state: ended.state, reason: ended.reason }, 'task ended');
    this.deps.events.emit('failed', sessionId, toTaskView(task));
  }
}
