import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { finishesWithin, settlesWithin, withTimeout } from '../../../common/timeout.ts';

const never = () => new Promise<never>(() => undefined);

describe('bounded waits', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  describe('withTimeout', () => {
    it('settles like the work when it is in time, and leaves no timer behind', async () => {
      await expect(
        withTimeout(Promise.resolve('ok'), 1_000, () => new Error('late')),
      ).resolves.toBe('ok');
      await expect(
        withTimeout(Promise.reject(new Error('own')), 1_000, () => new Error('late')),
      ).rejects.toThrow('own');
      expect(vi.getTimerCount()).toBe(0);
    });

    it("rejects with the caller's error once the time is up, not before", async () => {
      const outcome = withTimeout(never(), 5_000, () => new Error('no answer in 5000 ms'));
      const seen = vi.fn();
      outcome.catch(seen);
      await vi.advanceTimersByTimeAsync(4_999);
      expect(seen).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      await expect(outcome).rejects.toThrow('no answer in 5000 ms');
      expect(vi.getTimerCount()).toBe(0);
    });

    it('uses the timers it is given (a Clock fits)', async () => {
      const timers = {
        setTimeout: vi.fn((fn: () => void, ms: number) => setTimeout(fn, ms)),
        clearTimeout: vi.fn((handle: NodeJS.Timeout) => clearTimeout(handle)),
      };
      await withTimeout(Promise.resolve(1), 10, () => new Error('late'), timers);
      expect(timers.setTimeout).toHaveBeenCalledWith(expect.any(Function), 10);
      expect(timers.clearTimeout).toHaveBeenCalledTimes(1);
    });
  });

  describe('finishesWithin', () => {
    it('is true when the work fulfils in time, false when it hangs past the limit', async () => {
      await expect(finishesWithin(Promise.resolve(), 1_000)).resolves.toBe(true);
      const late = finishesWithin(never(), 5_000);
      await vi.advanceTimersByTimeAsync(5_000);
      await expect(late).resolves.toBe(false);
      expect(vi.getTimerCount()).toBe(0);
    });

    it("passes the work's rejection on", async () => {
      await expect(finishesWithin(Promise.reject(new Error('broke')), 1_000)).rejects.toThrow(
        'broke',
      );
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe('settlesWithin', () => {
    it('is true when the work settles in time, even by rejecting', async () => {
      await expect(settlesWithin(Promise.resolve('ok'), 1_000)).resolves.toBe(true);
      await expect(settlesWithin(Promise.reject(new Error('x')), 1_000)).resolves.toBe(true);
    });

    it('is false when the work hangs past the limit, and leaves no timer behind', async () => {
      const result = settlesWithin(never(), 5_000);
      await vi.advanceTimersByTimeAsync(5_000);
      await expect(result).resolves.toBe(false);
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});
