import { createHash, randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { WorkerKind } from '../../../proto/src/schemas/worker.ts';
import type { HeldTask } from '../store/task-store.ts';

/**
 * One assignment in flight. The store's lock token doubles as the fencing
 * lease: only the holder of (taskId, attempt, lease) may stream or finish it.
 * Only the task lifecycle (tasks/lifecycle.ts) adds, settles or drops leases;
 * everyone else reads them.
 */
export interface Lease {
  taskId: string;
  attempt: number;
  token: string;
  workerId: string;
  workerKind: WorkerKind;
  /** The task as taken from the store, under the lease's lock. */
  held: HeldTask;
  sessionId?: string;
  assignedAt: number;
  /** Next chunk seq expected; lower ones are duplicates. */
  nextSeq: number;
  /**
   * The answer as streamed so far (the continued text first, then every
   * chunk in order), for the next attempt to continue if this one dies;
   * undefined once a chunk went missing.
   */
  streamed: string | undefined;
  /** When this master accepted the attempt's first chunk (its clock): the time to first token. */
  firstChunkAt?: number;
  /** The worker has shown it runs this attempt (a heartbeat listed it, or it reported). */
  confirmed: boolean;
}

const ownerTag = (workerId: string) =>
  createHash('sha256').update(workerId).digest('base64url').slice(0, 16);

/**
 * A fresh lease (lock token) for an attempt given to `workerId`. It names its
 * worker (by a digest of its id), so a lease that leaked to another worker is
 * worth nothing to it, even to a master that restarted and knows no leases.
 */
export function newLease(workerId: string): string {
  return `${ownerTag(workerId)}.${randomUUID()}`;
}

/** True when `lease` was made for `workerId` (newLease). */
export function leaseMadeFor(lease: string, workerId: string): boolean {
  return lease.startsWith(`${ownerTag(workerId)}.`);
}

/** Settled attempts remembered, so a heartbeat racing an attempt's ack is recognised (about a minute at 150 tasks/s). */
const SETTLED_MEMORY = 10_000;

export class LeaseTable {
  private readonly byTask = new Map<string, Lease>();
  /** Attempts whose outcome is being written to the store right now: taskId → lease token. */
  private readonly settling = new Map<string, string>();
  /** `taskId#attempt` of attempts whose outcome this master stored lately. */
  private readonly settled = new LRUCache<string, true>({ max: SETTLED_MEMORY });

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

  /**
   * Takes the lease out while its outcome is stored: anything else for this
   * task meanwhile (a duplicate final, a cancel) reads it as stale, and no one
   * adopts it. False if the lease is no longer the table's.
   */
  settle(lease: Lease): boolean {
    if (!this.delete(lease)) return false;
    this.settling.set(lease.taskId, lease.token);
    return true;
  }

  /** The outcome is stored (or could not be): put the lease back only if asked and still free. */
  unsettle(lease: Lease, restore: boolean): void {
    if (this.settling.get(lease.taskId) === lease.token) this.settling.delete(lease.taskId);
    if (restore && !this.byTask.has(lease.taskId)) this.byTask.set(lease.taskId, lease);
    if (!restore) {
      this.settled.set(`${lease.taskId}#${lease.attempt}`, true);
    }
  }

  /**
   * This master stored the outcome of this attempt lately. A worker lists a
   * finished attempt in its heartbeats until the master's ack reaches it, so
   * such an entry is a report in flight, not a stale attempt to stop.
   */
  wasSettled(taskId: string, attempt: number): boolean {
    return this.settled.has(`${taskId}#${attempt}`);
  }

  isSettling(taskId: string): boolean {
    return this.settling.has(taskId);
  }

  all(): Lease[] {
    return [...this.byTask.values()];
  }

  get size(): number {
    return this.byTask.size;
  }
}
