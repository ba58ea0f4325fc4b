/**
 * Priorities with fairness inside a priority, written into BullMQ's own
 * ordering so waiting work still lives only in the store.
 *
 * BullMQ takes prioritized jobs by (priority, insertion), lower first, and
 * allows priorities 1..2,097,151 (0 means "no priority" and goes before all
 * of them; the stopper uses it for jobs that must end). A task's BullMQ
 * priority is
 *
 *     (1000 - userPriority) * ROUND_SPAN + round + 1
 *
 * with ROUND_SPAN = 2048 and round 0..MAX_ROUND (2046). Highest: user 1000,
 * round 0 → 1; lowest: user 0, round 2046 → 1000 * 2048 + 2047 = 2,050,047,
 * below the limit. Every task's priority is ≥ 1, so 0 stays reserved.
 *
 * The round is start-time fair queuing with unit cost, per (queue, user
 * priority): V is the highest round taken from the queue at that priority,
 * and a session's next task gets round max(V, its last round + 1). A session
 * that floods gets rounds 0, 1, 2, …; one that arrives later starts at V and
 * is interleaved with it, one task each per round, instead of waiting behind
 * the whole flood. (V is the highest round taken rather than the last one:
 * a lane takes several jobs at once, and reports may come back out of order.)
 *
 * Choices and trade-offs:
 * - Submissions without a session (REST without `x-flota-session`) share one
 *   anonymous session. Counting each as its own session would give every one
 *   of them round V, so a script flooding without a session would get ahead
 *   of every session's second task: the opposite of fair.
 * - State is master memory. After a restart V starts at 0 again, so new
 *   tasks may go ahead of older ones of the same priority that wait with
 *   higher rounds; the ordering by priority is unaffected, and the rounds
 *   even out as the queue drains.
 * - Rounds stop at MAX_ROUND: a backlog that never empties for more than
 *   2047 rounds at one priority degrades to first come, first served there
 *   until the queue runs empty once (that resets V and every session's round).
 */

/** Rounds per user priority: round 0..MAX_ROUND. */
export const ROUND_SPAN = 2048;
export const MAX_ROUND = ROUND_SPAN - 2;
/** Highest user priority (the schema allows 0..1000). */
export const MAX_USER_PRIORITY = 1000;
/** The largest priority BullMQ accepts. */
export const BULL_PRIORITY_LIMIT = 2 ** 21 - 1;
/** The session that sessionless submissions share (one per tenant: see fairnessKey). */
export const ANONYMOUS_SESSION = '';

/** Whose turn a task takes: its session, or its tenant's anonymous session (never a session id). */
export const fairnessKey = (sessionId: string | undefined, tenant: string | undefined) =>
  sessionId ?? `${ANONYMOUS_SESSION}\u0000${tenant ?? ''}`;

/** Our priority (0–1000, higher first) and a fairness round as BullMQ's (1 first). */
export function toBullPriority(userPriority: number, round = 0): number {
  const p = Math.min(MAX_USER_PRIORITY, Math.max(0, Math.trunc(userPriority)));
  const r = Math.min(MAX_ROUND, Math.max(0, Math.trunc(round)));
  return (MAX_USER_PRIORITY - p) * ROUND_SPAN + r + 1;
}

/** The user priority and round a BullMQ priority encodes, or undefined for 0 or out of range. */
export function fromBullPriority(
  bullPriority: number,
): { userPriority: number; round: number } | undefined {
  if (!Number.isInteger(bullPriority) || bullPriority < 1) return undefined;
  const band = Math.floor((bullPriority - 1) / ROUND_SPAN);
  if (band > MAX_USER_PRIORITY) return undefined;
  return { userPriority: MAX_USER_PRIORITY - band, round: (bullPriority - 1) % ROUND_SPAN };
}

/** What a lane saw just before a take; hand it back with the outcome. */
export interface TakeMark {
  readonly generation: number;
  /** Admissions so far, or -1 if some were not yet in the store (the queue cannot be judged empty). */
  readonly admitted: number;
}

/** Above this many remembered sessions, those that no longer matter are forgotten. */
const PRUNE_AT = 10_000;

/** The fair-share clock of one queue: the lane reports takes, submissions ask for priorities. */
export class FairShare {
  /** Highest round taken, per user priority. */
  private readonly virtual = new Map<number, number>();
  /** Last round given, per `${userPriority}\0${session}`. */
  private readonly last = new Map<string, number>();
  private generation = 0;
  private admitted = 0;
  private pending = 0;
  private pruneAt = PRUNE_AT;

  /**
   * The BullMQ priority for a new task of `session` at `userPriority`. Call
   * `settle()` once the add has returned (or failed).
   */
  admit(userPriority: number, session: string | undefined): number {
    const slot = `${userPriority}\u0000${session ?? ANONYMOUS_SESSION}`;
    const prior = this.last.get(slot);
    const round = Math.min(
      MAX_ROUND,
      Math.max(this.virtual.get(userPriority) ?? 0, prior === undefined ? 0 : prior + 1),
    );
    this.last.set(slot, round);
    if (this.last.size > this.pruneAt) this.prune();
    this.admitted += 1;
    this.pending += 1;
    return toBullPriority(userPriority, round);
  }

  /** An admitted task's add has returned: the store holds it (or never will). */
  settle(): void {
    this.pending = Math.max(0, this.pending - 1);
  }

  /** Call before a take. */
  mark(): TakeMark {
    return { generation: this.generation, admitted: this.pending > 0 ? -1 : this.admitted };
  }

  /**
   * A lane took a job with this BullMQ priority and user priority. Ignored for
   * priority 0 (a job that must end), for a priority that does not match the
   * task's (a job from before fairness, or a half-applied change), and for a
   * take that started before the last reset.
   */
  taken(mark: TakeMark, userPriority: number, bullPriority: number | undefined): void {
    if (mark.generation !== this.generation || bullPriority === undefined) return;
    const decoded = fromBullPriority(bullPriority);
    if (!decoded || decoded.userPriority !== userPriority) return;
    const v = this.virtual.get(userPriority) ?? 0;
    if (decoded.round > v) this.virtual.set(userPriority, decoded.round);
  }

  /**
   * A take found the queue empty. If every admitted task was in the store
   * before that take and none came since, nothing waits: start all rounds
   * afresh (this is what keeps rounds away from MAX_ROUND).
   */
  empty(mark: TakeMark): void {
    if (mark.generation !== this.generation || mark.admitted !== this.admitted) return;
    if (this.virtual.size === 0 && this.last.size === 0) return;
    this.virtual.clear();
    this.last.clear();
    this.generation += 1;
  }

  /** V at a user priority (for tests and metrics). */
  round(userPriority: number): number {
    return this.virtual.get(userPriority) ?? 0;
  }

  /** How many (priority, session) rounds are remembered. */
  get remembered(): number {
    return this.last.size;
  }

  /** A session whose last round is below V is placed at V anyway: forget it. */
  private prune(): void {
    for (const [slot, round] of this.last) {
      const priority = Number(slot.slice(0, slot.indexOf('\u0000')));
      if (round < (this.virtual.get(priority) ?? 0)) this.last.delete(slot);
    }
    // Many sessions that all still wait: do not scan again on every admission.
    this.pruneAt = Math.max(PRUNE_AT, 2 * this.last.size);
  }
}
