import { describe, expect, it } from 'vitest';
import {
  BULL_PRIORITY_LIMIT,
  FairShare,
  fromBullPriority,
  MAX_ROUND,
  MAX_USER_PRIORITY,
  toBullPriority,
} from '../../../master/src/tasks/fair-priority.ts';

/** BullMQ's order for prioritized jobs: (priority, insertion), lower first. */
class SimQueue {
  private seq = 0;
  private readonly jobs: Array<{ id: string; priority: number; bull: number; seq: number }> = [];

  add(id: string, priority: number, bull: number): void {
    this.jobs.push({ id, priority, bull, seq: this.seq++ });
  }

  /** Takes the next job as a lane does, reporting to the fair share. */
  take(fair: FairShare): string | undefined {
    const mark = fair.mark();
    this.jobs.sort((a, b) => a.bull - b.bull || a.seq - b.seq);
    const job = this.jobs.shift();
    if (!job) fair.empty(mark);
    else fair.taken(mark, job.priority, job.bull);
    return job?.id;
  }
}

function submit(fair: FairShare, queue: SimQueue, id: string, session?: string, priority = 0) {
  const bull = fair.admit(priority, session);
  queue.add(id, priority, bull);
  fair.settle();
  return bull;
}

describe('BullMQ priority arithmetic', () => {
  it('keeps every task priority within 1..BullMQ’s limit, 0 reserved', () => {
    expect(toBullPriority(MAX_USER_PRIORITY, 0)).toBe(1);
    expect(toBullPriority(0, MAX_ROUND)).toBe(2_050_047);
    expect(toBullPriority(0, MAX_ROUND)).toBeLessThanOrEqual(BULL_PRIORITY_LIMIT);
    expect(BULL_PRIORITY_LIMIT).toBe(2_097_151);
    expect(toBullPriority(0, MAX_ROUND + 50)).toBe(toBullPriority(0, MAX_ROUND));
  });

  it('orders by user priority first, whatever the rounds', () => {
    for (const p of [0, 1, 499, 999]) {
      expect(toBullPriority(p + 1, MAX_ROUND)).toBeLessThan(toBullPriority(p, 0));
      expect(toBullPriority(p, 3)).toBeLessThan(toBullPriority(p, 4));
    }
  });

  it('reads a BullMQ priority back, and refuses 0 and foreign values', () => {
    for (const [p, r] of [
      [0, 0],
      [7, 12],
      [1000, MAX_ROUND],
    ] as const) {
      expect(fromBullPriority(toBullPriority(p, r))).toEqual({ userPriority: p, round: r });
    }
    expect(fromBullPriority(0)).toBeUndefined();
    expect(fromBullPriority(1.5)).toBeUndefined();
    expect(fromBullPriority(BULL_PRIORITY_LIMIT)).toBeUndefined();
  });
});

describe('FairShare', () => {
  it('interleaves a late session with a flood: its 5 tasks all run before the flood’s 8th', () => {
    const fair = new FairShare();
    const queue = new SimQueue();
    for (let i = 0; i < 40; i += 1) submit(fair, queue, `a${i}`, 'session-a');
    const order: string[] = [];
    for (let i = 0; i < 3; i += 1) order.push(queue.take(fair) as string);
    expect(fair.round(0)).toBe(2);
    for (let i = 0; i < 5; i += 1) submit(fair, queue, `b${i}`, 'session-b');
    for (let id = queue.take(fair); id; id = queue.take(fair)) order.push(id);
    // B starts at round V = 2 (a2 is taken): b0 goes next, then a3, b1 (same round, later), …
    expect(order.slice(0, 13)).toEqual([
      'a0',
      'a1',
      'a2',
      'b0',
      'a3',
      'b1',
      'a4',
      'b2',
      'a5',
      'b3',
      'a6',
      'b4',
      'a7',
    ]);
    expect(order).toHaveLength(45);
  });

  it('gives sessionless submissions one shared session, so they cannot crowd out others', () => {
    const fair = new FairShare();
    const queue = new SimQueue();
    for (let i = 0; i < 10; i += 1) submit(fair, queue, `anon${i}`);
    submit(fair, queue, 's0', 'session-s');
    submit(fair, queue, 's1', 'session-s');
    const order: string[] = [];
    for (let id = queue.take(fair); id; id = queue.take(fair)) order.push(id);
    expect(order.slice(0, 4)).toEqual(['anon0', 's0', 'anon1', 's1']);
  });

  it('serves higher priorities first and keeps rounds per priority', () => {
    const fair = new FairShare();
    const queue = new SimQueue();
    for (let i = 0; i < 5; i += 1) submit(fair, queue, `low${i}`, 'a', 0);
    submit(fair, queue, 'high-a', 'a', 10);
    submit(fair, queue, 'high-b', 'b', 10);
    expect(queue.take(fair)).toBe('high-a');
    expect(queue.take(fair)).toBe('high-b');
    expect(queue.take(fair)).toBe('low0');
    expect(fair.round(10)).toBe(0);
  });

  it('starts afresh once the queue is seen empty with nothing on its way', () => {
    const fair = new FairShare();
    const queue = new SimQueue();
    for (let i = 0; i < 4; i += 1) submit(fair, queue, `a${i}`, 'a');
    while (queue.take(fair));
    expect(fair.round(0)).toBe(0);
    expect(fair.admit(0, 'a')).toBe(toBullPriority(0, 0));
  });

  it('does not judge the queue empty while an admitted task may still be on its way', () => {
    const fair = new FairShare();
    fair.admit(0, 'a'); // its add has not returned: the lane cannot have seen it
    const early = fair.mark();
    fair.empty(early);
    fair.settle();
    expect(fair.admit(0, 'a')).toBe(toBullPriority(0, 1));
    fair.settle();
    // A take that started before an admission proves nothing about it either.
    const before = fair.mark();
    fair.admit(0, 'a');
    fair.settle();
    fair.empty(before);
    expect(fair.admit(0, 'a')).toBe(toBullPriority(0, 3));
  });

  it('ignores takes of jobs that must end, of foreign priorities, and from before a reset', () => {
    const fair = new FairShare();
    for (let i = 0; i < 6; i += 1) fair.admit(0, 'a');
    const mark = fair.mark();
    fair.taken(mark, 0, 0); // priority 0: a cancelled job
    fair.taken(mark, 0, toBullPriority(5, 3)); // the data says 0, the queue says 5
    fair.taken(mark, 0, undefined);
    expect(fair.round(0)).toBe(0);
    fair.taken(mark, 0, toBullPriority(0, 4));
    expect(fair.round(0)).toBe(4);
    fair.taken(mark, 0, toBullPriority(0, 2)); // reported late: V never goes back
    expect(fair.round(0)).toBe(4);
    for (let i = 0; i < 6; i += 1) fair.settle();
    const stale = fair.mark();
    fair.empty(fair.mark());
    fair.taken(stale, 0, toBullPriority(0, 5));
    expect(fair.round(0)).toBe(0);
  });

  it('stops at the last round: a backlog that never drains becomes first come, first served', () => {
    const fair = new FairShare();
    let last = 0;
    for (let i = 0; i < MAX_ROUND + 10; i += 1) last = fair.admit(0, 'flood');
    expect(last).toBe(toBullPriority(0, MAX_ROUND));
    expect(fair.admit(0, 'other')).toBe(toBullPriority(0, 0));
  });

  it('forgets sessions that no longer matter once many are remembered', () => {
    const fair = new FairShare();
    const mark = fair.mark();
    for (let i = 0; i < 10_000; i += 1) fair.admit(0, `s-${i}`);
    expect(fair.remembered).toBe(10_000);
    fair.taken(mark, 0, toBullPriority(0, 1));
    // Everyone is at round 0 < V = 1, where they would be placed anyway: forgotten.
    expect(fair.admit(0, 'fresh')).toBe(toBullPriority(0, 1));
    expect(fair.remembered).toBe(1);
    expect(fair.admit(0, 's-3')).toBe(toBullPriority(0, 1));
  });
});
