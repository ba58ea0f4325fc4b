import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffCap, backoffDelay } from '../../../common/retry.ts';

const options = { baseMs: 200, maxMs: 2_000 };

describe('backoff with full jitter', () => {
  it('doubles the cap from baseMs and holds it at maxMs', () => {
    expect([0, 1, 2, 3, 4, 5, 50, 5_000].map((n) => backoffCap(n, options))).toEqual([
      200, 400, 800, 1_600, 2_000, 2_000, 2_000, 2_000,
    ]);
  });

  it('draws the whole range: 0 at the bottom, the cap at the top', () => {
    expect(backoffDelay(2, { ...options, random: () => 0 })).toBe(0);
    expect(backoffDelay(2, { ...options, random: () => 0.999_999_9 })).toBe(800);
    expect(backoffDelay(2, { ...options, random: () => 0.5 })).toBe(400);
  });

  it('is always a whole number of ms within [0, cap]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, draw) => {
          const delay = backoffDelay(attempt, { ...options, random: () => draw });
          return Number.isInteger(delay) && delay >= 0 && delay <= backoffCap(attempt, options);
        },
      ),
    );
  });

  it('spreads the waits of many callers (no herd)', () => {
    const delays = new Set(Array.from({ length: 100 }, () => backoffDelay(4, options)));
    expect(delays.size).toBeGreaterThan(50);
  });
});
