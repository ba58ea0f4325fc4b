/**
 * Last Wills held back for a moment before the worker's tasks are taken back.
 * A broker that shuts down publishes every connected client's Will first; the
 * master hears them ~30 ms before its own link drops. Withdrawing them then
 * (or when the same worker process reconnects) saves needless retries.
 */

/** How long after a Last Will the worker's tasks are taken back. */
export const WILL_GRACE_MS = 300;

interface HeldWill {
  timer: NodeJS.Timeout;
  startedAt: number;
  active: Map<string, number>;
}

export class WillGrace {
  private readonly held = new Map<string, HeldWill>();

  /** Holds a Will; `revoke` runs after the grace unless it is withdrawn first. */
  hold(workerId: string, startedAt: number, active: Map<string, number>, revoke: () => void): void {
    this.withdraw(workerId);
    const timer = setTimeout(() => {
      this.held.delete(workerId);
      revoke();
    }, WILL_GRACE_MS);
    this.held.set(workerId, { timer, startedAt, active });
  }

  /** The task's slot was freed meanwhile (it finished, or the hold ended): do not bring it back. */
  forget(workerId: string, taskId: string): void {
    this.held.get(workerId)?.active.delete(taskId);
  }

  /** The process that left the Will, if one is held for this worker. */
  startedAt(workerId: string): number | undefined {
    return this.held.get(workerId)?.startedAt;
  }

  /** Cancels a held Will; returns the tasks the worker still holds, if one was held. */
  withdraw(workerId: string): Map<string, number> | undefined {
    const will = this.held.get(workerId);
    if (!will) return undefined;
    clearTimeout(will.timer);
    this.held.delete(workerId);
    return will.active;
  }

  workers(): string[] {
    return [...this.held.keys()];
  }

  clear(): void {
    for (const workerId of this.workers()) this.withdraw(workerId);
  }
}
