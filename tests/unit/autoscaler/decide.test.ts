import { describe, expect, it } from 'vitest';
import {
  decide,
  type PoolMemory,
  type PoolObservation,
  type PoolPolicy,
  policyProblems,
  wantedReplicas,
} from '../../../autoscaler/src/decide.ts';

const policy: PoolPolicy = {
  min: 1,
  max: 8,
  stepUp: 2,
  stepDown: 1,
  cooldownUpMs: 10_000,
  cooldownDownMs: 60_000,
  upAfterDownMs: 0,
  targetUtilisation: 0.8,
  slotsPerWorker: 2,
};

/** `replicas` workers, all online with 2 slots each. */
const pool = (replicas: number, active: number, backlog: number): PoolObservation => ({
  replicas,
  backlog,
  active,
  slots: replicas * 2,
  online: replicas,
});

describe('wantedReplicas', () => {
  it('gives every waiting or running task a slot at the target utilisation', () => {
    // 10 tasks / (2 slots × 0.8) = 6.25 → 7
    expect(wantedReplicas(policy, pool(2, 4, 6))).toBe(7);
    expect(wantedReplicas(policy, pool(2, 1, 0))).toBe(1);
  });

  it('stays within min and max', () => {
    expect(wantedReplicas(policy, pool(2, 0, 0))).toBe(1);
    expect(wantedReplicas(policy, pool(2, 4, 500))).toBe(8);
  });

  it('uses slotsPerWorker while no worker of the pool is online', () => {
    const empty = { replicas: 0, backlog: 3, active: 0, slots: 0, online: 0 };
    expect(wantedReplicas({ ...policy, min: 0 }, empty)).toBe(2);
  });
});

describe('decide', () => {
  it('comes up to min at once on a fresh start', () => {
    const d = decide(policy, pool(0, 0, 0), {}, 1_000);
    expect(d).toMatchObject({ action: 'up', reason: 'below-min', from: 0, replicas: 1 });
  });

  it('comes up past min, a step at a time, when work is already waiting', () => {
    const d = decide({ ...policy, min: 2 }, pool(0, 0, 20), {}, 0);
    expect(d).toMatchObject({ action: 'up', reason: 'below-min', replicas: 2, wanted: 8 });
    const far = decide({ ...policy, min: 5 }, pool(0, 0, 0), {}, 0);
    expect(far).toMatchObject({ action: 'up', reason: 'below-min', replicas: 5 });
  });

  it('replaces a replica that went away only after the up cooldown (no crash loop)', () => {
    const started = decide(policy, pool(0, 0, 0), {}, 0);
    const crashed = decide(policy, pool(0, 0, 0), started.memory, 5_000);
    expect(crashed).toMatchObject({ action: 'hold', reason: 'cooldown', replicas: 0 });
    const later = decide(policy, pool(0, 0, 0), crashed.memory, 10_000);
    expect(later).toMatchObject({ action: 'up', reason: 'below-min', replicas: 1 });
  });

  it('waits upAfterDownMs after a scale-down before growing again (Swarm reuses slots)', () => {
    const swarm = { ...policy, upAfterDownMs: 40_000 };
    const memory: PoolMemory = { lastDownAt: 100_000, lastUpAt: 0 };
    const burst = decide(swarm, pool(3, 6, 10), memory, 139_999);
    expect(burst).toMatchObject({ action: 'hold', reason: 'draining', replicas: 3 });
    const after = decide(swarm, pool(3, 6, 10), burst.memory, 140_000);
    expect(after).toMatchObject({ action: 'up', reason: 'backlog', replicas: 5 });
  });

  it('comes down to max at once', () => {
    const d = decide(policy, pool(12, 0, 0), {}, 1_000);
    expect(d).toMatchObject({ action: 'down', reason: 'above-max', replicas: 8 });
  });

  it('grows under a backlog, at most a step at a time, then waits out the cooldown', () => {
    let memory: PoolMemory = {};
    const first = decide(policy, pool(2, 4, 20), memory, 0);
    expect(first).toMatchObject({ action: 'up', reason: 'backlog', from: 2, replicas: 4 });
    memory = first.memory;
    const early = decide(policy, pool(4, 8, 16), memory, 9_999);
    expect(early).toMatchObject({ action: 'hold', reason: 'cooldown', replicas: 4 });
    const later = decide(policy, pool(4, 8, 16), early.memory, 10_000);
    expect(later).toMatchObject({ action: 'up', replicas: 6 });
  });

  it('grows when slots are busier than the target, with no backlog', () => {
    const d = decide(policy, pool(4, 8, 0), {}, 0);
    expect(d).toMatchObject({ action: 'up', reason: 'busy', replicas: 5, utilisation: 1 });
  });

  it('never takes more than wanted', () => {
    const d = decide({ ...policy, stepUp: 10 }, pool(1, 2, 1), {}, 0);
    expect(d.replicas).toBe(2);
  });

  it('shrinks only after load stayed low for a whole cooldown, one step at a time', () => {
    const idle = pool(5, 1, 0);
    const t0 = 100_000;
    const first = decide(policy, idle, {}, t0);
    expect(first).toMatchObject({ action: 'hold', reason: 'stabilising' });
    const almost = decide(policy, idle, first.memory, t0 + 59_999);
    expect(almost).toMatchObject({ action: 'hold', reason: 'stabilising' });
    const down = decide(policy, idle, almost.memory, t0 + 60_000);
    expect(down).toMatchObject({ action: 'down', reason: 'idle', from: 5, replicas: 4 });
    const again = decide(policy, pool(4, 1, 0), down.memory, t0 + 60_001);
    expect(again).toMatchObject({ action: 'hold', reason: 'stabilising' });
    const next = decide(policy, pool(4, 1, 0), again.memory, t0 + 120_000);
    expect(next).toMatchObject({ action: 'down', replicas: 3 });
  });

  it('starts the low-load window over when load returns', () => {
    const low = decide(policy, pool(4, 0, 0), {}, 0);
    const steady = decide(policy, pool(4, 5, 0), low.memory, 30_000);
    expect(steady).toMatchObject({ action: 'hold', reason: 'steady' });
    expect(steady.memory.lowSince).toBeUndefined();
    const lowAgain = decide(policy, pool(4, 0, 0), steady.memory, 61_000);
    expect(lowAgain).toMatchObject({ action: 'hold', reason: 'stabilising' });
  });

  it('does not shrink soon after growing', () => {
    const up = decide(policy, pool(2, 4, 10), {}, 0);
    const low = decide(policy, pool(4, 0, 0), { ...up.memory, lowSince: -120_000 }, 30_000);
    expect(low).toMatchObject({ action: 'hold', reason: 'cooldown' });
  });

  it('never shrinks while tasks wait, even with idle slots on paper', () => {
    // Slots idle but tasks queued: a model only some workers serve, say.
    const d = decide(policy, { replicas: 6, backlog: 1, active: 0, slots: 12, online: 6 }, {}, 0);
    expect(d).toMatchObject({ action: 'hold', reason: 'tasks-waiting' });
  });

  it('wakes a pool scaled to zero', () => {
    const zero = { ...policy, min: 0 };
    const d = decide(zero, { replicas: 0, backlog: 1, active: 0, slots: 0, online: 0 }, {}, 0);
    expect(d).toMatchObject({ action: 'up', reason: 'backlog', replicas: 1 });
  });

  it('holds steady when the pool fits the load', () => {
    expect(decide(policy, pool(3, 4, 0), {}, 0)).toMatchObject({
      action: 'hold',
      reason: 'steady',
    });
  });

  it('six hours of random load never leaves the bounds and never moves more than a step', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const swarm = { ...policy, upAfterDownMs: 30_000 };
    let replicas = 1;
    let memory: PoolMemory = {};
    let moves = 0;
    for (let now = 0; now < 6 * 3_600_000; now += 5_000) {
      const online = Math.floor(random() * (replicas + 1));
      const seen = {
        replicas,
        backlog: random() < 0.3 ? Math.floor(random() * 40) : 0,
        active: Math.floor(random() * online * 2),
        slots: online * 2,
        online,
      };
      const d = decide(swarm, seen, memory, now);
      expect(d.replicas).toBeGreaterThanOrEqual(policy.min);
      expect(d.replicas).toBeLessThanOrEqual(policy.max);
      expect(d.replicas - replicas).toBeLessThanOrEqual(policy.stepUp);
      expect(replicas - d.replicas).toBeLessThanOrEqual(policy.stepDown);
      if (d.action === 'up' && memory.lastUpAt !== undefined) {
        expect(now - memory.lastUpAt).toBeGreaterThanOrEqual(policy.cooldownUpMs);
      }
      if (d.action === 'up' && memory.lastDownAt !== undefined) {
        expect(now - memory.lastDownAt).toBeGreaterThanOrEqual(swarm.upAfterDownMs);
      }
      if (d.replicas !== replicas) moves++;
      replicas = d.replicas;
      memory = d.memory;
    }
    expect(moves).toBeGreaterThan(10);
  });
});

describe('policyProblems', () => {
  it('names each setting that cannot work', () => {
    const problems = policyProblems({ ...policy, min: 9, stepUp: 0, targetUtilisation: 1.5 });
    expect(problems).toEqual([
      'min (9) is above max (8)',
      'stepUp must be at least 1',
      'targetUtilisation must be above 0 and at most 1',
    ]);
    expect(policyProblems(policy)).toEqual([]);
  });
});
