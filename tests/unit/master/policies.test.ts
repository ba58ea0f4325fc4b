import { describe, expect, it } from 'vitest';
import { POLICY_NAMES } from '../../../master/src/config.ts';
import { createPolicy } from '../../../master/src/dispatch/policies/index.ts';
import { createLeastConnectionsPolicy } from '../../../master/src/dispatch/policies/least-connections.ts';
import { createRoundRobinPolicy } from '../../../master/src/dispatch/policies/round-robin.ts';
import type { DispatchPolicy, TaskNeeds } from '../../../master/src/dispatch/policies/types.ts';
import { freeSlots, type WorkerRecord } from '../../../master/src/registry/worker-record.ts';
import { available, need, prng, worker } from './policy-support.ts';

/** A mixed fleet: sizes, weights, loads and heartbeats differ, so every policy has work to do. */
function fleet(): WorkerRecord[] {
  return [
    worker('a', { slots: 2, weight: 3, load: { cpuPct: 10, memPct: 30 } }),
    worker('b', { slots: 4, active: 1, weight: 1, load: { cpuPct: 60, memPct: 50 } }),
    worker('c', { slots: 1, weight: 2 }),
    worker('d', { slots: 3, active: 3, weight: 5, load: { cpuPct: 5, memPct: 5 } }),
    worker('e', {
      slots: 8,
      active: 2,
      kind: 'gpu',
      load: { cpuPct: 20, memPct: 40, gpuUtil: [70] },
    }),
  ];
}

/**
 * One reproducible stream of everything the master does to a policy: picks
 * over changing candidate sets (the pick is reserved, as a lane does),
 * completions reported to observe, empty fetches undone with unpick,
 * workers forgotten. Returns the picked ids.
 */
function runScript(policy: DispatchPolicy, seed: number, steps = 300): Array<string | undefined> {
  const random = prng(seed);
  const workers = fleet();
  const picked: Array<string | undefined> = [];
  for (let step = 0; step < steps; step++) {
    const candidates = available(workers).filter(() => random() < 0.85);
    const target = policy.pick(candidates, need);
    picked.push(target?.status.id);
    if (target && random() < 0.2) policy.unpick?.(target.status.id, need);
    else if (target) target.active.set(`s${step}`, 1);
    for (const w of workers) {
      for (const taskId of [...w.active.keys()]) {
        if (random() < 0.3) {
          w.active.delete(taskId);
          policy.observe?.({
            workerId: w.status.id,
            model: 'echo',
            processingMs: 5 + Math.floor(random() * 50),
          });
        }
      }
    }
    if (random() < 0.02) policy.forget?.(workers[Math.floor(random() * workers.length)]!.status.id);
  }
  return picked;
}

/** Cases every policy must pass; run over every name DISPATCH_POLICY accepts. */
function policyContract(name: string, create: () => DispatchPolicy) {
  describe(`${name} (policy contract)`, () => {
    it('carries its configured name', () => {
      expect(create().name).toBe(name);
    });

    it('returns undefined when there is no candidate', () => {
      const policy = create();
      expect(policy.pick([], need)).toBeUndefined();
      expect(policy.pick([], { model: 'other', gpu: true })).toBeUndefined();
    });

    it('always picks one of the candidates', () => {
      const policy = create();
      const random = prng(7);
      const workers = fleet();
      for (let i = 0; i < 200; i++) {
        const candidates = workers.filter(() => random() < 0.6);
        const target = policy.pick(candidates, need);
        if (candidates.length === 0) expect(target).toBeUndefined();
        else expect(candidates).toContain(target);
      }
    });

    it('fills exactly the free slots, never a worker without one, when candidates are filtered', () => {
      const policy = create();
      const workers = fleet();
      const free = workers.reduce((sum, w) => sum + freeSlots(w), 0);
      let assigned = 0;
      for (;;) {
        const target = policy.pick(available(workers), need);
        if (!target) break;
        expect(freeSlots(target)).toBeGreaterThan(0);
        target.active.set(`fill-${assigned++}`, 1);
        expect(assigned).toBeLessThanOrEqual(free);
      }
      expect(assigned).toBe(free);
      for (const w of workers) expect(w.active.size).toBe(w.status.slots);
    });

    it('is deterministic: the same calls in the same order give the same picks', () => {
      const first = runScript(create(), 42);
      expect(runScript(create(), 42)).toEqual(first);
      expect(first.filter((id) => id !== undefined).length).toBeGreaterThan(100);
    });

    it('handles a single candidate', () => {
      const policy = create();
      const only = worker('solo', { slots: 1000 });
      for (let i = 0; i < 20; i++) {
        expect(policy.pick([only], need)).toBe(only);
        policy.observe?.({ workerId: 'solo', model: 'echo', processingMs: 10 + i });
        if (i % 3 === 0) policy.unpick?.('solo', need);
      }
    });

    it('copes with workers disappearing and coming back', () => {
      const policy = create();
      const [a, b, c] = [worker('a'), worker('b'), worker('c')];
      for (let i = 0; i < 5; i++) expect([a, b, c]).toContain(policy.pick([a, b, c], need));
      policy.observe?.({ workerId: 'b', model: 'echo', processingMs: 3 });
      expect([a, c]).toContain(policy.pick([a, c], need));
      policy.forget?.('b');
      expect(policy.pick([c], need)).toBe(c);
      policy.forget?.('a');
      policy.forget?.('c');
      expect(policy.pick([], need)).toBeUndefined();
      const back = worker('b', { slots: 4 });
      expect(policy.pick([back], need)).toBe(back);
      expect([back, c]).toContain(policy.pick([back, c], need));
    });

    it('spreads work over equal idle workers', () => {
      const policy = create();
      const candidates = [worker('a'), worker('b')];
      const picks = new Set(
        Array.from({ length: 4 }, () => policy.pick(candidates, need)?.status.id),
      );
      expect(picks).toEqual(new Set(['a', 'b']));
    });

    it('unpick takes back the last pick of a lane, and only that', () => {
      const candidates = [worker('a', { weight: 2 }), worker('b'), worker('c', { weight: 3 })];
      const plain = create();
      const undone = create();
      const expected = Array.from({ length: 12 }, () => plain.pick(candidates, need)?.status.id);
      const seen = expected.map(() => {
        const wasted = undone.pick(candidates, need)!;
        undone.unpick?.(wasted.status.id, need);
        undone.unpick?.(wasted.status.id, need); // a repeat is harmless
        undone.unpick?.('nobody', need); // so is a stranger
        return undone.pick(candidates, need)?.status.id;
      });
      expect(undone.unpick).toBeTypeOf('function');
      expect(seen).toEqual(expected);
    });

    it('keeps lanes apart: picks for one model do not move another lane', () => {
      const gpuLane: TaskNeeds = { model: 'echo', gpu: true };
      const candidates = [worker('a', { kind: 'gpu' }), worker('b', { kind: 'gpu' })];
      const alone = create();
      const expected = Array.from({ length: 6 }, () => alone.pick(candidates, need)?.status.id);
      const shared = create();
      const seen = expected.map(() => {
        shared.pick(candidates, gpuLane);
        return shared.pick(candidates, need)?.status.id;
      });
      expect(seen).toEqual(expected);
    });

    it('ignores samples that are not durations, and strangers', () => {
      const policy = create();
      const candidates = [worker('a'), worker('b')];
      for (const processingMs of [Number.NaN, -1, Number.POSITIVE_INFINITY])
        policy.observe?.({ workerId: 'a', model: 'echo', processingMs });
      policy.observe?.({ workerId: 'ghost', model: 'echo', processingMs: 1 });
      policy.forget?.('never-seen');
      policy.unpick?.('never-picked', { model: 'nothing', gpu: false });
      expect(candidates).toContain(policy.pick(candidates, need));
    });
  });
}

for (const name of POLICY_NAMES) policyContract(name, () => createPolicy(name));

describe('createPolicy', () => {
  it('builds every configured policy and refuses an unknown name', () => {
    expect(POLICY_NAMES.map((name) => createPolicy(name).name)).toEqual([...POLICY_NAMES]);
    expect(() => createPolicy('random' as never)).toThrow('unknown dispatch policy: random');
  });
});

describe('round-robin', () => {
  it('cycles in id order and survives a worker leaving', () => {
    const policy = createRoundRobinPolicy();
    const [a, b, c] = [worker('a'), worker('b'), worker('c')];
    const ids = Array.from({ length: 6 }, () => policy.pick([c, a, b], need)?.status.id);
    expect(ids).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    policy.pick([a, b, c], need); // → a
    expect(policy.pick([a, c], need)?.status.id).toBe('c');
  });
});

describe('least-connections', () => {
  it('prefers the lowest active/slots ratio', () => {
    const policy = createLeastConnectionsPolicy();
    const busy = worker('a', { slots: 2, active: 1 }); // 50 %
    const big = worker('b', { slots: 8, active: 2 }); // 25 %
    const full = worker('c', { slots: 1, active: 1 }); // 100 %
    expect(policy.pick([busy, big, full], need)?.status.id).toBe('b');
  });
  it('rotates among tied workers', () => {
    const policy = createLeastConnectionsPolicy();
    const ids = Array.from(
      { length: 4 },
      () =>
        policy.pick(
          [worker('x', { slots: 2, active: 1 }), worker('y', { slots: 4, active: 2 })],
          need,
        )?.status.id,
    );
    expect(ids).toEqual(['x', 'y', 'x', 'y']);
  });
});
