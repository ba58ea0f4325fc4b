/**
 * Lets loops sleep until something happens or a timeout passes, whichever is
 * first. `notify` wakes one sleeper (a task added is work for one loop, and
 * waking every loop for it costs a store round trip each); `notifyAll` wakes
 * them all. A notification with nobody asleep is kept for the next `wait`.
 */
export class Signal {
  private waiters = new Set<() => void>();
  private pending = false;

  notify(): void {
    const first = this.waiters.values().next();
    if (first.done) {
      this.pending = true;
      return;
    }
    first.value();
  }

  notifyAll(): void {
    if (this.waiters.size === 0) {
      this.pending = true;
      return;
    }
    for (const wake of [...this.waiters]) wake();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      this.waiters.add(wake);
    });
  }
}
