/**
 * One lane per queue (capability class + model + labels). It takes a task from
 * the durable queue only after reserving a free slot on a capable worker, so
 * waiting work stays in the store, never in master memory. It also keeps the
 * queue's fair-share clock (fair-priority.ts), since it sees every take.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../../common/logger.ts';
import { describeLabels, type QueueKey, queueName } from '../../../proto/src/queues.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { SlotHold, WorkerRecord } from '../registry/worker-record.ts';
import type { HeldTask, TaskQueueHandle, TaskTaker } from '../store/task-store.ts';
import { FairShare } from '../tasks/fair-priority.ts';
import type { TakeOutcome } from '../tasks/lifecycle.ts';
import type { DispatchGate } from './gate.ts';
import { newLease } from './leases.ts';
import type { DispatchPolicy, TaskNeeds } from './policies/types.ts';
import { Signal } from './signal.ts';

/** How often an idle lane looks at the queue anyway (delayed retries, jobs from other masters). */
export const LANE_POLL_MS = 1_000;
/**
 * Takes running at once per lane. Each take is a store round trip; several in
 * flight keep the store busy while results and assignments are handled.
 */
export const LANE_PARALLEL_TAKES = 8;
/**
 * How soon a lane looks again when its only candidates were held by another
 * lane's take in flight (a hold lasts one store round trip). Lanes that share
 * workers (any/gpu, labelled/unlabelled) are woken together and poll in step,
 * so without this one could miss the slot on every poll.
 */
export const HOLD_RETRY_MS = 5;
/** How long a loop other than the poller sleeps when nothing wakes it. */
const IDLE_LOOP_WAIT_MS = 60_000;
/** Quick looks in a row at most (a hold that outlasts them, e.g. a store that hangs, gets the poll). */
const MAX_QUICK_RETRIES = 20;

export interface LaneDeps {
  registry: WorkerRegistry;
  policy: DispatchPolicy;
  log: Logger;
  /** Takes the head task of this lane's queue. */
  taker: TaskTaker;
  /** This lane's queue, read without taking. */
  queue: TaskQueueHandle;
  /**
   * Hands a taken task on (the task lifecycle): to the chosen worker, whose
   * slot is held meanwhile, or, with no worker, to be ended if it must.
   */
  taken(held: HeldTask, workerId: string | undefined): Promise<TakeOutcome>;
  /** The operator's word: all dispatch stopped, workers drained (fleet control). */
  gate?: DispatchGate;
}

export class Lane {
  private readonly signal: Signal;
  private closed = false;
  private loops: Promise<void>[] = [];
  private need: TaskNeeds;
  /**
   * The key names its labels only by digest (the lane was opened from a task
   * id): no worker is picked until a task of the queue has shown them.
   */
  private blind: boolean;
  /**
   * A task at the head of this queue must end: take it even when no worker
   * is free. Also set at start when such tasks were left behind by a
   * previous master.
   */
  private reapPending = false;
  /** Rounds for fairness within a priority; task submissions ask it for queue orders. */
  readonly fairness = new FairShare();
  /** This lane's slot holds in flight. */
  private readonly holds = new Set<SlotHold>();
  /** The last take found a task (or none was tried yet), or work came since: there may be more waiting. */
  private maybeMore = true;
  /** Counts `wake` calls, so a take that found nothing only clears `maybeMore` if no work came meanwhile. */
  private wakes = 0;

  constructor(
    readonly key: QueueKey,
    private readonly deps: LaneDeps,
  ) {
    this.signal = new Signal();
    this.need = { model: key.model, gpu: key.capability === 'gpu', labels: key.labels };
    this.blind = key.labelsDigest !== undefined && key.labels === undefined;
  }

  start(): void {
    if (this.loops.length > 0) return;
    for (let i = 0; i < LANE_PARALLEL_TAKES; i += 1) this.loops.push(this.run(i === 0));
    this.deps.queue.headCount().then(
      (count) => {
        if (count > 0) this.reap();
      },
      (err) => this.deps.log.warn({ err, queue: this.key }, 'could not read the queue head'),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.signal.notifyAll();
    await Promise.all(this.loops);
  }

  /** Work may wait in the queue (a task added or put back here, a new worker): one loop looks. */
  wake(): void {
    this.maybeMore = true;
    this.wakes += 1;
    this.signal.notify();
  }

  /**
   * A slot freed somewhere. One loop looks, unless the last take found the
   * queue empty and nothing was added since: then there is nothing to take
   * (tasks other masters add are found by the poll).
   */
  offerCapacity(): void {
    if (this.maybeMore || this.reapPending) this.signal.notify();
  }

  /** Asks the lane to take and end a marked task (it sits at the head of the queue). */
  reap(): void {
    this.reapPending = true;
    this.signal.notify();
  }

  /** True when nobody online can ever serve this lane (the UI says why the task waits). */
  unservable(): boolean {
    return this.deps.registry.capable(this.need).length === 0;
  }

  /**
   * Tells a blind lane the labels of its queue (a submission knows them);
   * true when the lane knows its labels afterwards.
   */
  know(labels: Readonly<Record<string, string>> | undefined): boolean {
    if (!this.blind) return true;
    if (!labels || queueName({ ...this.key, labels }) !== queueName(this.key)) return false;
    this.need = { ...this.need, labels };
    this.blind = false;
    this.deps.log.info({ queue: queueName(this.key), labels }, 'lane learned its labels');
    this.signal.notify();
    return true;
  }

  /** What a worker needs to serve this lane, for people: `echo on a GPU with labels zone=eu`. */
  describeNeed(): string {
    const labels = describeLabels(this.need.labels);
    return `${this.need.model}${this.need.gpu ? ' on a GPU' : ''}${labels ? ` with labels ${labels}` : ''}`;
  }

  /**
   * One take loop. Only the `polling` one looks at the queue every
   * LANE_POLL_MS on its own; the others sleep until woken (a wake-up, or the
   * poller finding work and waking one more), so an idle lane costs one pick
   * a second, not eight.
   */
  private async run(polling: boolean): Promise<void> {
    const idleMs = polling ? LANE_POLL_MS : IDLE_LOOP_WAIT_MS;
    let quick = 0;
    while (!this.closed) {
      try {
        const progressed = await this.step();
        if (progressed) {
          quick = 0;
          // One more loop joins while takes find work; each that finds none goes back to sleep.
          this.signal.notify();
        } else {
          const soon = quick < MAX_QUICK_RETRIES && this.maybeMore && this.heldByOtherLane();
          quick = soon ? quick + 1 : 0;
          await this.signal.wait(soon ? HOLD_RETRY_MS : idleMs);
        }
      } catch (err) {
        this.deps.log.warn({ err, queue: this.key }, 'dispatch step failed; retrying');
        await this.signal.wait(LANE_POLL_MS);
      }
    }
  }

  /** One attempt to move one task to one worker; false when there was nothing to do. */
  private async step(): Promise<boolean> {
    const { registry, policy } = this.deps;
    if (this.blind) return this.reapPending ? this.reapOne() : this.learnLabels();
    // Stopped, a lane still ends the tasks marked ending (cancelled while queued); the rest wait.
    if (this.deps.gate?.stopped()) return this.reapPending ? this.reapOne() : false;
    const target = policy.pick(this.admitted(registry.available(this.need)), this.need);
    if (!target) return this.reapPending ? this.reapOne() : false;
    const workerId = target.status.id;
    const hold: SlotHold = { by: queueName(this.key) };
    registry.hold(workerId, hold);
    this.holds.add(hold);
    let held: HeldTask | undefined;
    const mark = this.fairness.mark();
    const wakes = this.wakes;
    try {
      held = await this.deps.taker.take(newLease(workerId));
    } finally {
      registry.unhold(workerId, hold);
      this.holds.delete(hold);
    }
    if (held) this.maybeMore = true;
    else if (wakes === this.wakes) this.maybeMore = false;
    if (!held) this.fairness.empty(mark);
    else if (!this.closed) this.fairness.taken(mark, held.data.priority, held.order);
    // A stop or drain that came while the take was in flight holds too, and so
    // does the picked worker going offline meanwhile (a Last Will, a restart):
    // an assignment to a process the registry has written off would wait in
    // the broker for the worker's next process, tracked by no record, its lock
    // renewed for ever. The picked record itself is asked, not the id: a
    // restarted worker has a new record, and picks only ever return online
    // ones, so a put-back can never repeat on the same stale record. From here
    // to the reservation (lifecycle.assign) nothing yields, so the check holds.
    if (!held || this.closed || !this.admits(workerId) || target.state !== 'online') {
      policy.unpick?.(workerId, this.need);
      if (held) await held.putBack().catch(() => undefined);
      return false;
    }
    if ((await this.deps.taken(held, workerId)) !== 'assigned')
      policy.unpick?.(workerId, this.need);
    return true;
  }

  /** The operator lets dispatch give this worker a task now. */
  private admits(workerId: string): boolean {
    const gate = this.deps.gate;
    return !gate || (!gate.stopped() && gate.admits(workerId));
  }

  private admitted(workers: WorkerRecord[]): WorkerRecord[] {
    const gate = this.deps.gate;
    return gate ? workers.filter((w) => gate.admits(w.status.id)) : workers;
  }

  /** A worker that could serve this lane is held by another lane's take in flight. */
  private heldByOtherLane(): boolean {
    return this.deps.registry
      .capable(this.need)
      .some((w) => [...w.holds].some((hold) => !this.holds.has(hold)));
  }

  private async reapOne(): Promise<boolean> {
    const held = await this.deps.taker.take(randomUUID());
    const ended = held ? (await this.deps.taken(held, undefined)) === 'ended' : false;
    if (!ended) this.reapPending = false;
    return ended;
  }

  /** Reads the labels off a task of the queue, without taking it (a take would show as running). */
  private async learnLabels(): Promise<boolean> {
    const data = await this.deps.queue.peek();
    if (!data) return false;
    if (!this.know(data.labels)) {
      this.deps.log.warn({ queue: queueName(this.key) }, 'task labels do not match its queue');
    }
    return !this.blind;
  }
}
