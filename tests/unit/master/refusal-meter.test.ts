import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AuditInput } from '../../../master/src/audit/audit-log.ts';
import {
  MAX_REFUSAL_SOURCES,
  REFUSAL_WINDOW_MS,
  REFUSALS_PER_SOURCE,
  RefusalMeter,
} from '../../../master/src/audit/refusal-meter.ts';

const refusal = (from: string) => ({ from, target: 'GET /api/workers', detail: '401 no token' });

describe('RefusalMeter', () => {
  let recorded: AuditInput[];
  let meter: RefusalMeter;
  beforeEach(() => {
    vi.useFakeTimers();
    recorded = [];
    meter = new RefusalMeter((entry) => recorded.push(entry));
  });
  afterEach(() => {
    meter.close();
    vi.useRealTimers();
  });

  it('records the first few per address one by one, then one count when the minute ends', () => {
    for (let i = 0; i < 1_000; i++) meter.refused(refusal('10.0.0.1'));
    meter.refused(refusal('10.0.0.2'));
    expect(recorded).toHaveLength(REFUSALS_PER_SOURCE + 1);
    expect(recorded[0]).toMatchObject({ action: 'auth.refused', from: '10.0.0.1' });

    vi.advanceTimersByTime(REFUSAL_WINDOW_MS);
    expect(recorded).toHaveLength(REFUSALS_PER_SOURCE + 2);
    expect(recorded.at(-1)).toMatchObject({
      action: 'auth.refused.more',
      from: '10.0.0.1',
      count: 1_000 - REFUSALS_PER_SOURCE,
    });

    // A new window records one by one again.
    meter.refused(refusal('10.0.0.1'));
    expect(recorded.at(-1)).toMatchObject({ action: 'auth.refused', from: '10.0.0.1' });
  });

  it('counts refusals from more addresses than it tracks together', () => {
    for (let i = 0; i < MAX_REFUSAL_SOURCES + 50; i++) meter.refused(refusal(`10.1.${i}`));
    expect(recorded).toHaveLength(MAX_REFUSAL_SOURCES);
    meter.flush();
    expect(recorded.at(-1)).toMatchObject({ action: 'auth.refused.more', from: '*', count: 50 });
  });
});
