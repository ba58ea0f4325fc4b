/**
 * Each policy under a known load, driven by the simulated dispatcher in
 * policy-support.ts: the shares it produces are the ones it promises.
 */
import { describe, expect, it } from 'vitest';
import { createPolicy } from '../../../master/src/dispatch/policies/index.ts';
import {
  createLatencyAwarePolicy,
  PROBE_EVERY,
} from '../../../master/src/dispatch/policies/latency-aware.ts';
import { EWMA_ALPHA, LatencyBook } from '../../../master/src/dispatch/policies/latency-book.ts';
import { createLeastConnectionsPolicy } from '../../../master/src/dispatch/policies/least-connections.ts';
import { createLeastLoadedPolicy } from '../../../master/src/dispatch/policies/least-loaded.ts';
import { createWeightedRoundRobinPolicy } from '../../../master/src/dispatch/policies/weighted-round-robin.ts';
import type { WorkerRecord } from '../../../master/src/registry/worker-record.ts';
import { available, countBy, need, simulate, worker } from './policy-support.ts';

/** Picks `n` times from a fixed candidate set (nobody ever fills up). */
function picks(policy: ReturnType<typeof createPolicy>, candidates: WorkerRecord[], n: number) {
  return Array.from({ length: n }, () => policy.pick(candidates, need)?.status.id);
}

describe('weighted-round-robin', () => {
  it('weights 3:1 give 75/25 (±3 %) over 1000 picks, evenly interleaved', () => {
    const ids = picks(
      createWeightedRoundRobinPolicy(),
      [worker('a', { weight: 3, slots: 1000 }), worker('b', { weight: 1, slots: 1000 })],
      1000,
    );
    const counts = countBy(ids);
    expect(counts.a! / 1000).toBeGreaterThanOrEqual(0.72);
    expect(counts.a! / 1000).toBeLessThanOrEqual(0.78);
    expect(counts.a! + counts.b!).toBe(1000);
    // Smooth: b turns up once in every window of four, never twice in a row.
    for (let i = 0; i + 4 <= ids.length; i += 4)
      expect(ids.slice(i, i + 4).filter((id) => id === 'b')).toHaveLength(1);
  });

  it('weights 5:3:2 give 50/30/20 (±3 %) under a simulated load', () => {
    const { counts } = simulate({
      policy: createWeightedRoundRobinPolicy(),
      workers: [
        { record: worker('a', { weight: 5, slots: 8 }), latencyMs: 10 },
        { record: worker('b', { weight: 3, slots: 8 }), latencyMs: 10 },
        { record: worker('c', { weight: 2, slots: 8 }), latencyMs: 10 },
      ],
      tasks: 1000,
      arrivalEveryMs: 4,
    });
    expect(Math.abs(counts.a! / 1000 - 0.5)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(counts.b! / 1000 - 0.3)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(counts.c! / 1000 - 0.2)).toBeLessThanOrEqual(0.03);
  });

  it('keeps 3:1 when every other pick finds the queue empty and is taken back', () => {
    const candidates = [worker('a', { weight: 3, slots: 1000 }), worker('b', { slots: 1000 })];
    const assigned = (undo: boolean) => {
      const policy = createWeightedRoundRobinPolicy();
      return countBy(
        Array.from({ length: 1000 }, () => {
          const used = policy.pick(candidates, need)!.status.id;
          const wasted = policy.pick(candidates, need)!.status.id;
          if (undo) policy.unpick!(wasted, need);
          return used;
        }),
      );
    };
    expect(assigned(true)).toEqual({ a: 750, b: 250 });
    // Without unpick an idle poll after every assignment would halve the rotation: 50/50.
    expect(assigned(false)).toEqual({ a: 500, b: 500 });
  });

  it('gives a full worker no turn and no credit, and resumes the shares when it frees up', () => {
    const policy = createWeightedRoundRobinPolicy();
    const a = worker('a', { weight: 3, slots: 1000 });
    const b = worker('b', { weight: 1, slots: 1000 });
    expect(picks(policy, [b], 10)).toEqual(Array(10).fill('b'));
    expect(countBy(picks(policy, [a, b], 400))).toEqual({ a: 300, b: 100 });
  });
});

describe('least-loaded', () => {
  const idle = () => worker('idle', { slots: 8, load: { cpuPct: 5, memPct: 15 } });
  const busy = () => worker('busy', { slots: 8, load: { cpuPct: 95, memPct: 85 } });

  it('prefers the idle worker, then spreads a burst once in-flight work evens the score', () => {
    const policy = createLeastLoadedPolicy();
    const workers = [busy(), idle()];
    expect(policy.pick(workers, need)?.status.id).toBe('idle');
    // Pressure 0.10 vs 0.90: the idle one takes tasks until 0.10 + n/8 ≥ 0.90 (n = 7).
    const burst: string[] = [];
    for (let i = 0; i < 12; i++) {
      const target = policy.pick(available(workers), need)!;
      target.active.set(`t${i}`, 1);
      burst.push(target.status.id);
    }
    expect(burst.slice(0, 7)).toEqual(Array(7).fill('idle'));
    expect(countBy(burst)).toEqual({ idle: 8, busy: 4 });
  });

  it('counts the busiest GPU of a GPU worker', () => {
    const policy = createLeastLoadedPolicy();
    const hot = worker('hot', { kind: 'gpu', load: { cpuPct: 10, memPct: 10, gpuUtil: [5, 99] } });
    const cool = worker('cool', { kind: 'gpu', load: { cpuPct: 30, memPct: 30, gpuUtil: [20] } });
    expect(policy.pick([hot, cool], { model: 'echo', gpu: true })?.status.id).toBe('cool');
  });

  it('ranks a worker with no heartbeat yet at the mean of the others', () => {
    const policy = createLeastLoadedPolicy();
    const fresh = worker('fresh', { slots: 8 });
    expect(policy.pick([busy(), fresh], need)?.status.id).toBe('busy'); // tie at 0.90: id order
    expect(policy.pick([idle(), fresh], need)?.status.id).toBe('fresh'); // tie at 0.10: rotates
  });

  it('under a simulated load, sends the idle machine most of the work', () => {
    const { counts } = simulate({
      policy: createLeastLoadedPolicy(),
      workers: [
        { record: busy(), latencyMs: 20 },
        { record: idle(), latencyMs: 20 },
      ],
      tasks: 1000,
      arrivalEveryMs: 5,
    });
    expect(counts.idle! / 1000).toBeGreaterThanOrEqual(0.95);
  });
});

describe('least-connections', () => {
  it('fills workers in proportion to their slots (2 vs 6 → 1:3 at every step of four)', () => {
    const policy = createLeastConnectionsPolicy();
    const workers = [worker('small', { slots: 2 }), worker('large', { slots: 6 })];
    for (let round = 1; round <= 2; round++) {
      for (let i = 0; i < 4; i++)
        policy.pick(available(workers), need)!.active.set(`r${round}-${i}`, 1);
      expect(workers.map((w) => w.active.size)).toEqual([round, 3 * round]);
    }
    expect(policy.pick(available(workers), need)).toBeUndefined();
  });

  it('keeps active/slots level under a simulated load (round-robin does not)', () => {
    const worstGap = (name: 'least-connections' | 'round-robin') => {
      let gap = 0;
      simulate({
        policy: createPolicy(name),
        workers: [
          { record: worker('small', { slots: 2 }), latencyMs: 30 },
          { record: worker('large', { slots: 6 }), latencyMs: 30 },
        ],
        tasks: 1000,
        arrivalEveryMs: 5,
        onAssign: ([small, large]) => {
          const ratio = (w: WorkerRecord) => w.active.size / w.status.slots;
          gap = Math.max(gap, Math.abs(ratio(small!) - ratio(large!)));
        },
      });
      return gap;
    };
    // Never more than one task of the small worker (1/2) apart; round-robin fills it up.
    expect(worstGap('least-connections')).toBeLessThanOrEqual(0.5);
    expect(worstGap('round-robin')).toBeGreaterThan(0.5);
  });
});

describe('latency-aware', () => {
  /** Fast 10 ms and slow 40 ms (4x), 4 slots each, a task every 5 ms: 1000 tasks. */
  const run = (name: 'latency-aware' | 'round-robin' | 'least-connections', everyMs = 5) =>
    simulate({
      policy: createPolicy(name),
      workers: [
        { record: worker('fast', { slots: 4 }), latencyMs: 10 },
        { record: worker('slow', { slots: 4 }), latencyMs: 40 },
      ],
      tasks: 1000,
      arrivalEveryMs: everyMs,
    });

  it('gives a 4x slower worker at most 5 % (round-robin: 50 %, least-connections: 25 %)', () => {
    const aware = run('latency-aware').counts;
    expect(aware.slow! / 1000).toBeLessThanOrEqual(0.05);
    // Probes keep it measured: about one task in PROBE_EVERY + 1.
    expect(aware.slow!).toBeGreaterThanOrEqual(Math.floor(1000 / (PROBE_EVERY + 1)) - 1);
    expect(run('round-robin').counts.slow! / 1000).toBe(0.5);
    expect(run('least-connections').counts.slow! / 1000).toBe(0.25);
  });

  it('uses the slow worker when the fast one is saturated, still far less than its slot share', () => {
    // A task every 3 ms: more than the fast worker alone keeps up with at a low queue.
    const aware = run('latency-aware', 3);
    expect(aware.counts.slow! / 1000).toBeLessThanOrEqual(0.1);
    expect(aware.makespanMs).toBeLessThanOrEqual(run('least-connections', 3).makespanMs);
  });

  it('tries a new worker first (optimistic start), then judges it by its samples', () => {
    const policy = createLatencyAwarePolicy();
    const known = worker('known', { slots: 4 });
    for (let i = 0; i < 3; i++) {
      expect(policy.pick([known], need)).toBe(known);
      policy.observe!({ workerId: 'known', model: 'echo', processingMs: 10 });
    }
    const newcomer = worker('newcomer', { slots: 4 });
    expect(policy.pick([known, newcomer], need)).toBe(newcomer);
    policy.observe!({ workerId: 'newcomer', model: 'echo', processingMs: 100 });
    expect(picks(policy, [known, newcomer], 5)).toEqual(Array(5).fill('known'));
    // Forgotten (it went offline) and back: measured afresh.
    policy.forget!('newcomer');
    expect(policy.pick([known, newcomer], need)).toBe(newcomer);
  });

  it('keeps averages per model and moves them by α = 0.3 per sample', () => {
    const book = new LatencyBook();
    book.observe({ workerId: 'w', model: 'm1', processingMs: 100 });
    book.observe({ workerId: 'w', model: 'm1', processingMs: 200 });
    expect(book.estimate('w', 'm1')).toBeCloseTo(100 + EWMA_ALPHA * 100);
    expect(book.estimate('w', 'm2')).toBeUndefined();
    expect(book.observe({ workerId: 'w', model: 'm1', processingMs: Number.NaN })).toBe(false);
    expect(book.estimate('w', 'm1')).toBeCloseTo(130);
  });

  it('follows a worker that slows down', () => {
    const policy = createLatencyAwarePolicy();
    const [a, b] = [worker('a', { slots: 4 }), worker('b', { slots: 4 })];
    for (const w of ['a', 'b']) {
      policy.pick([a, b], need);
      policy.observe!({ workerId: w, model: 'echo', processingMs: 20 });
    }
    for (let i = 0; i < 10; i++)
      policy.observe!({ workerId: 'a', model: 'echo', processingMs: 80 });
    expect(countBy(picks(policy, [a, b], 20))).toEqual({ b: 20 });
  });
});
