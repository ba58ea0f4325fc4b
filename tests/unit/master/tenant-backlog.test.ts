import { describe, expect, it } from 'vitest';
import { TenantBacklog } from '../../../master/src/tasks/tenant-backlog.ts';

describe('TenantBacklog', () => {
  it('admits up to the cap per tenant, then refuses until a task ends', () => {
    const backlog = new TenantBacklog();
    expect(backlog.admit('acme', 't1', 1_000, 2, 0)).toBe('added');
    expect(backlog.admit('acme', 't2', 1_000, 2, 0)).toBe('added');
    expect(backlog.admit('acme', 't3', 1_000, 2, 0)).toBe('full');
    expect(backlog.admit('globex', 'g1', 1_000, 2, 0)).toBe('added');
    expect(backlog.count('acme', 0)).toBe(2);
    backlog.remove('t1');
    expect(backlog.admit('acme', 't3', 1_000, 2, 0)).toBe('added');
  });

  it('counts a retried task once, even at the cap', () => {
    const backlog = new TenantBacklog();
    expect(backlog.admit('acme', 't1', 1_000, 1, 0)).toBe('added');
    expect(backlog.admit('acme', 't1', 1_000, 1, 0)).toBe('known');
    expect(backlog.count('acme', 0)).toBe(1);
  });

  it('stops counting a task whose end it never heard once its time has passed', () => {
    const backlog = new TenantBacklog();
    backlog.admit('acme', 'old', 500, 1, 0);
    expect(backlog.admit('acme', 'new', 2_000, 1, 400)).toBe('full');
    expect(backlog.admit('acme', 'new', 2_000, 1, 500)).toBe('added');
    expect(backlog.count('acme', 500)).toBe(1);
  });

  it('ignores the end of a task it never counted', () => {
    const backlog = new TenantBacklog();
    backlog.remove('nobody');
    backlog.admit('acme', 't1', 1_000, 5, 0);
    backlog.remove('t1');
    backlog.remove('t1');
    expect(backlog.count('acme', 0)).toBe(0);
  });
});
