import type { WorkerKind } from '../../../proto/src/schemas/worker.ts';
import type { TaskJob } from '../tasks/task-data.ts';

/**
 * One assignment in flight. The BullMQ lock token doubles as the fencing
 * lease: only the holder of (taskId, attempt, lease) may stream or finish it.
 */
export interface Lease {
  taskId: string;
  attempt: number;
  token: string;
  workerId: string;
  workerKind: WorkerKind;
  job: TaskJob;
  sessionId?: string;
  assignedAt: number;
  /** Next chunk seq expected; lower ones are duplicates. */
  nextSeq: number;
  /** The worker has shown it runs this attempt (a heartbeat listed it, or it reported). */
  confirmed: boolean;
}

export class LeaseTable {
  private readonly byTask = new Map<string, Lease>();

  set(lease: Lease): void {
    this.byTask.set(lease.taskId, lease);
  }

  get(taskId: string): Lease | undefined {
    return this.byTask.get(taskId);
  }

  delete(lease: Lease): boolean {
    if (this.byTask.get(lease.taskId) !== lease) return false;
    return this.byTask.delete(lease.taskId);
  }

  all(): Lease[] {
    return [...this.byTask.values()];
  }

  get size(): number {
    return this.byTask.size;
  }
}
