import type { Clock } from '../../../common/clock.ts';

/** Lets a loop sleep until something happens or a timeout passes, whichever is first. */
export class Signal {
  private waiters = new Set<() => void>();
  private pending = false;

  constructor(private readonly clock: Clock) {}

  notify(): void {
    if (this.waiters.size === 0) {
      this.pending = true;
      return;
    }
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = () => {
        this.clock.clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = this.clock.setTimeout(wake, timeoutMs);
      this.waiters.add(wake);
    });
  }
}
