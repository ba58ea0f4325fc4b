/**
 * One lane per queue (capability class + model). It takes a job from the
 * durable queue only after reserving a free slot on a capable worker, so
 * waiting work stays in the store, never in master memory.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../common/clock.ts';
import type { Logger } from '../../../common/logger.ts';
import type { QueueKey } from '../../../proto/src/queues.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { StoreWorker } from '../store/types.ts';
import type { TaskJob, TaskJobData, TaskJobResult } from '../tasks/task-data.ts';
import type { DispatchPolicy } from './policies/types.ts';
import { Signal } from './signal.ts';

/** How often an idle lane looks at the queue anyway (delayed retries, jobs from other masters). */
export const LANE_POLL_MS = 1_000;
/**
 * Takes running at once per lane. Each take is a store round trip; several in
 * flight keep the store busy while results and assignments are handled.
 */
export const LANE_PARALLEL_TAKES = 8;

export interface LaneDeps {
  registry: WorkerRegistry;
  policy: DispatchPolicy;
  clock: Clock;
  log: Logger;
  /** Hands a fetched job to the chosen worker; the slot is already reserved under `token`. */
  assign(job: TaskJob, workerId: string, token: string): void;
  /** A job taken only to end it (cancel, timeout); false if it must not end (it was put back). */
  reap(job: TaskJob, token: string): Promise<boolean>;
}

export class Lane {
  readonly signal: Signal;
  private closed = false;
  private loops: Promise<void>[] = [];
  private readonly need: { model: string; gpu: boolean };
  /** A job at the head of this queue must end: take it even when no worker is free. */
  private reapPending = false;

  constructor(
    readonly key: QueueKey,
    readonly bullWorker: StoreWorker<TaskJobData, TaskJobResult>,
    private readonly deps: LaneDeps,
  ) {
    this.signal = new Signal(deps.clock);
    this.need = { model: key.model, gpu: key.capability === 'gpu' };
  }

  start(): void {
    if (this.loops.length > 0) return;
    for (let i = 0; i < LANE_PARALLEL_TAKES; i += 1) this.loops.push(this.run());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.signal.notify();
    await Promise.all(this.loops);
  }

  /** Asks the lane to take and end a marked job (it sits at the head of the queue). */
  reap(): void {
    this.reapPending = true;
    this.signal.notify();
  }

  /** True when nobody online can ever serve this lane (the UI says why the task waits). */
  unservable(): boolean {
    return this.deps.registry.capable(this.need).length === 0;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        const progressed = await this.step();
        if (!progressed) await this.signal.wait(LANE_POLL_MS);
      } catch (err) {
        this.deps.log.warn({ err, queue: this.key }, 'dispatch step failed; retrying');
        await this.signal.wait(LANE_POLL_MS);
      }
    }
  }

  /** One attempt to move one job to one worker; false when there was nothing to do. */
  private async step(): Promise<boolean> {
    const { registry, policy } = this.deps;
    const target = policy.pick(registry.available(this.need), this.need);
    if (!target) return this.reapPending ? this.reapOne() : false;
    const workerId = target.status.id;
    const token = randomUUID();
    const hold = `hold:${token}`;
    registry.reserve(workerId, hold, 0, false);
    let job: TaskJob | undefined;
    try {
      job = (await this.bullWorker.getNextJob(token, { block: false })) as TaskJob | undefined;
    } finally {
      registry.release(workerId, hold, false);
    }
    if (!job || this.closed) {
      policy.unpick?.(workerId, this.need);
      if (job) await job.moveToDelayed(this.deps.clock.now(), token).catch(() => undefined);
      return false;
    }
    this.deps.assign(job, workerId, token);
    return true;
  }

  private async reapOne(): Promise<boolean> {
    const token = randomUUID();
    const job = (await this.bullWorker.getNextJob(token, { block: false })) as TaskJob | undefined;
    const ended = job ? await this.deps.reap(job, token) : false;
    if (!ended) this.reapPending = false;
    return ended;
  }
}
