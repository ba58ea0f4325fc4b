/**
 * Authentication failures go to the audit trail, but a flood of them must
 * not fill the store: per client address and minute, the first few are
 * recorded one by one, the rest counted and recorded once, as one
 * `auth.refused.more` record, when the minute ends.
 */
import type { AuditInput } from './audit-log.ts';

/** Refusals from one address recorded one by one per window. */
export const REFUSALS_PER_SOURCE = 5;
export const REFUSAL_WINDOW_MS = 60_000;
/** Addresses tracked per window; refusals from more are counted together (from `*`). */
export const MAX_REFUSAL_SOURCES = 1_000;
const OTHERS = '*';

/** One refusal as the edge saw it. */
export interface Refusal {
  from?: string;
  actor?: string;
  role?: 'user' | 'admin';
  /** What was asked for, e.g. `POST /api/fleet/stop`. */
  target: string;
  /** The answer, e.g. `401 the API token is not valid`. */
  detail: string;
}

export class RefusalMeter {
  private readonly counts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly record: (entry: AuditInput) => void) {}

  refused(refusal: Refusal): void {
    this.timer ??= setTimeout(() => this.flush(), REFUSAL_WINDOW_MS);
    this.timer.unref?.();
    let source = refusal.from ?? 'unknown';
    if (!this.counts.has(source) && this.counts.size >= MAX_REFUSAL_SOURCES) source = OTHERS;
    const count = (this.counts.get(source) ?? 0) + 1;
    this.counts.set(source, count);
    if (count > REFUSALS_PER_SOURCE || source === OTHERS) return;
    this.record({ action: 'auth.refused', result: 'refused', ...refusal });
  }

  /** Records what the window counted beyond the first few, and starts a new window. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const [from, count] of this.counts) {
      const more = from === OTHERS ? count : count - REFUSALS_PER_SOURCE;
      if (more <= 0) continue;
      this.record({
        action: 'auth.refused.more',
        result: 'refused',
        from,
        count: more,
        detail: `${more} more refused requests from ${from === OTHERS ? 'other addresses' : from} within a minute`,
      });
    }
    this.counts.clear();
  }

  close(): void {
    this.flush();
  }
}
