/**
 * Tasks completed and failed per worker since this master started, counted
 * from the task events (the worker of the task's last attempt), for the
 * console's worker table. Bounded: the least recently counted worker is
 * forgotten first.
 */
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { TaskEvents } from '../tasks/task-events.ts';

/** Most workers counted at once. */
export const MAX_TALLIED_WORKERS = 20_000;

export interface Tally {
  done: number;
  failed: number;
}

const NONE: Tally = Object.freeze({ done: 0, failed: 0 });

export class WorkerTally {
  private readonly counts = new Map<string, Tally>();
  private readonly onCompleted = (_session: string | undefined, task: TaskView) =>
    this.count(task, 'done');
  private readonly onFailed = (_session: string | undefined, task: TaskView) =>
    this.count(task, 'failed');

  constructor(
    private readonly events: TaskEvents,
    private readonly max = MAX_TALLIED_WORKERS,
  ) {
    events.on('completed', this.onCompleted);
    events.on('failed', this.onFailed);
  }

  of(workerId: string): Tally {
    return this.counts.get(workerId) ?? NONE;
  }

  close(): void {
    this.events.off('completed', this.onCompleted);
    this.events.off('failed', this.onFailed);
  }

  private count(task: TaskView, outcome: keyof Tally): void {
    // A cancelled task was not the worker's failure; a cached answer had no worker.
    if (!task.workerId || task.state === 'cancelled') return;
    const tally = this.counts.get(task.workerId) ?? { done: 0, failed: 0 };
    tally[outcome] += 1;
    // Re-inserted: the Map's order is then least recently counted first.
    this.counts.delete(task.workerId);
    this.counts.set(task.workerId, tally);
    if (this.counts.size > this.max) {
      const oldest = this.counts.keys().next().value;
      if (oldest !== undefined) this.counts.delete(oldest);
    }
  }
}
