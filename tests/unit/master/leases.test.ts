import { describe, expect, it } from 'vitest';
import type { Lease } from '../../../master/src/dispatch/leases.ts';
import { LeaseTable } from '../../../master/src/dispatch/leases.ts';

const lease = (token: string): Lease =>
  ({ taskId: 't1', attempt: 1, token, workerId: 'w', nextSeq: 0, confirmed: true }) as Lease;

describe('LeaseTable settling', () => {
  it('reads as settling while an outcome is stored, and is gone once stored', () => {
    const table = new LeaseTable();
    const a = lease('A');
    table.set(a);
    expect(table.settle(a)).toBe(true);
    expect(table.get('t1')).toBeUndefined();
    expect(table.isSettling('t1')).toBe(true);
    expect(table.settle(a)).toBe(false);
    table.unsettle(a, false);
    expect(table.isSettling('t1')).toBe(false);
    expect(table.get('t1')).toBeUndefined();
  });

  it('puts a lease back after a failed store write, unless a newer one took its place', () => {
    const table = new LeaseTable();
    const a = lease('A');
    table.set(a);
    table.settle(a);
    table.unsettle(a, true);
    expect(table.get('t1')).toBe(a);
    table.settle(a);
    const b = lease('B');
    table.set(b);
    table.unsettle(a, true);
    expect(table.get('t1')).toBe(b);
  });

  it('remembers the attempts whose outcome it stored, not those put back', () => {
    const table = new LeaseTable();
    const a = lease('A');
    table.set(a);
    table.settle(a);
    table.unsettle(a, true);
    expect(table.wasSettled('t1', 1)).toBe(false);
    table.settle(a);
    table.unsettle(a, false);
    expect(table.wasSettled('t1', 1)).toBe(true);
    expect(table.wasSettled('t1', 2)).toBe(false);
  });
});
