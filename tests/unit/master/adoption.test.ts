/**
 * A worker lists a finished attempt in its heartbeats until the master's ack
 * reaches it. The master must read that as a report in flight: no store
 * lookup, no slot held, no cancel. An attempt it never knew is still looked
 * up (adoption after a master restart).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Adopter, type AdopterDeps } from '../../../master/src/dispatch/adoption.ts';
import { type Lease, LeaseTable, newLease } from '../../../master/src/dispatch/leases.ts';

function setup() {
  const leases = new LeaseTable();
  const lookups: string[] = [];
  const cancels: string[] = [];
  const reserved: string[] = [];
  const deps = {
    leases,
    registry: {
      hold: (_w: string, hold: { by: string }) => reserved.push(hold.by),
      unhold: () => undefined,
      get: () => undefined,
    },
    store: {
      queueOf: () => ({
        adopt: async (taskId: string) => {
          lookups.push(taskId);
          return 'gone';
        },
      }),
    },
    lifecycle: {
      tellWorker: (_w: string, message: { taskId: string }) => cancels.push(message.taskId),
      adopted: async () => undefined,
    },
    log: pino({ level: 'silent' }),
    lockDurationMs: 30_000,
  } as unknown as AdopterDeps;
  return { adopter: new Adopter(deps), leases, lookups, cancels, reserved };
}

const lease = (taskId: string, attempt: number): Lease =>
  ({
    taskId,
    attempt,
    token: `tok-${taskId}`,
    workerId: 'w1',
    nextSeq: 0,
    confirmed: true,
  }) as Lease;

describe('Adopter.onActive', () => {
  it('leaves alone an attempt whose outcome this master just stored', async () => {
    const { adopter, leases, lookups, cancels, reserved } = setup();
    const done = lease('t-done', 1);
    leases.set(done);
    leases.settle(done);
    leases.unsettle(done, false);
    adopter.onActive('w1', [{ taskId: 't-done', attempt: 1, lease: 'tok-t-done' }]);
    await adopter.adopt('w1', { taskId: 't-other', attempt: 1, lease: newLease('w1') });
    expect(lookups).toEqual(['t-other']);
    expect(reserved).toEqual(['adoption of t-other']);
    expect(cancels).toEqual(['t-other']);
  });

  it('looks up an attempt it never knew, and stops it when the store does not hold it', async () => {
    const { adopter, lookups, cancels } = setup();
    const tok = newLease('w1');
    adopter.onActive('w1', [{ taskId: 't-unknown', attempt: 2, lease: tok }]);
    await adopter.adopt('w1', { taskId: 't-unknown', attempt: 2, lease: tok });
    expect(lookups).toEqual(['t-unknown']);
    expect(cancels).toEqual(['t-unknown']);
  });

  it("refuses another worker's lease without asking the store, and stops that attempt", async () => {
    const { adopter, lookups, cancels } = setup();
    const leaked = newLease('w2');
    const outcome = await adopter.adopt('w1', { taskId: 't-leaked', attempt: 1, lease: leaked });
    expect(outcome).toEqual({ reason: 'stale_lease' });
    expect(lookups).toEqual([]);
    expect(cancels).toEqual(['t-leaked']);
  });
});
