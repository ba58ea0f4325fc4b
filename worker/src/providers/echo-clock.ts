/**
 * The echo provider's schedule: one timer for all the chunks its tasks have
 * due, however many tasks stream at once. A timer and a promise per chunk
 * made a fast echo stream cost more than relaying it; now every chunk due by
 * the same moment goes out on one timer. Nothing runs before its due time
 * (`Date.now()` reached it), and a late one runs at the next firing.
 */
export class EchoClock {
  /** Due time (epoch ms) → what runs then, in the order scheduled. */
  private readonly due = new Map<number, Array<() => void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private firing = false;

  /** Runs `run` once `Date.now()` reached `at`. */
  at(at: number, run: () => void): void {
    const list = this.due.get(at);
    if (list) list.push(run);
    else this.due.set(at, [run]);
    if (!this.firing && at < this.timerAt) this.arm(at);
  }

  /** Forgets `run`, scheduled at `at`; the timer stops once nothing is due. */
  cancel(at: number, run: () => void): void {
    const list = this.due.get(at);
    const i = list?.indexOf(run) ?? -1;
    if (!list || i === -1) return;
    list.splice(i, 1);
    if (list.length === 0) this.due.delete(at);
    if (this.due.size === 0 && !this.firing) this.disarm();
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.firing = true;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    try {
      // Entries added meanwhile (a late task's next chunk) are visited too.
      for (const [at, list] of this.due) {
        if (at > now) {
          next = Math.min(next, at);
          continue;
        }
        this.due.delete(at);
        for (const run of list) run();
      }
    } finally {
      this.firing = false;
      if (next < Number.POSITIVE_INFINITY) this.arm(next);
      else if (this.due.size > 0) this.arm(Math.min(...this.due.keys()));
    }
  }
}
