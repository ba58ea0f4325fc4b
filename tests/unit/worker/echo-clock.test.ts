import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EchoClock } from '../../../worker/src/providers/echo-clock.ts';

describe('echo clock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs each entry once its time came, never before, on one timer for all', async () => {
    const clock = new EchoClock();
    const start = Date.now();
    const ran: Array<[string, number]> = [];
    const run = (name: string) => () => ran.push([name, Date.now() - start]);
    clock.at(start + 3, run('a3'));
    clock.at(start + 3, run('b3'));
    clock.at(start + 5, run('c5'));
    clock.at(start + 1, run('d1'));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(ran).toEqual([['d1', 1]]);
    await vi.advanceTimersByTimeAsync(3);
    expect(ran).toEqual([
      ['d1', 1],
      ['a3', 3],
      ['b3', 3],
      ['c5', 5],
    ]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('runs what falls due while it fires in the same firing, and what comes later on time', async () => {
    const clock = new EchoClock();
    const start = Date.now();
    const ran: number[] = [];
    // A task behind its schedule: its next entries are already due when it runs.
    let due = start - 4;
    const step = () => {
      ran.push(Date.now() - start);
      due += 2;
      if (due <= start + 4) clock.at(due, step);
    };
    clock.at(due, step);
    await vi.advanceTimersByTimeAsync(0);
    expect(ran).toEqual([0, 0, 0]);
    await vi.advanceTimersByTimeAsync(4);
    expect(ran).toEqual([0, 0, 0, 2, 4]);
  });

  it('forgets a cancelled entry and stops its timer once nothing is due', async () => {
    const clock = new EchoClock();
    const run = vi.fn();
    const at = Date.now() + 10;
    clock.at(at, run);
    clock.cancel(at, run);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(20);
    expect(run).not.toHaveBeenCalled();
  });
});
