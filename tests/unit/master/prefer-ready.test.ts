/**
 * Dispatch prefers a worker that has the task's model loaded: every policy
 * DISPATCH_POLICY names picks among the ready candidates first, and among
 * all of them only when none is ready.
 */
import { describe, expect, it } from 'vitest';
import { POLICY_NAMES } from '../../../master/src/config.ts';
import { createPolicy } from '../../../master/src/dispatch/policies/index.ts';
import { readyFirst } from '../../../master/src/dispatch/policies/prefer-ready.ts';
import type { TaskNeeds } from '../../../master/src/dispatch/policies/types.ts';
import type { WorkerRecord } from '../../../master/src/registry/worker-record.ts';
import { available, worker } from './policy-support.ts';

const tiny: TaskNeeds = { model: 'tiny', gpu: false };

/** A llama worker serving `tiny`, with it loaded or not; light load so every policy likes it. */
function llama(id: string, loaded: boolean, slots = 2): WorkerRecord {
  const record = worker(id, { slots, models: ['tiny'], load: { cpuPct: 90, memPct: 90 } });
  record.local = new Set(['tiny']);
  if (record.heartbeat)
    record.heartbeat.loaded = loaded
      ? [{ name: 'tiny', memMb: 500, loadMs: 900, lastUsedAt: 1 }]
      : [];
  return record;
}

/** A cold worker that every policy would otherwise prefer: idle, light, heavy weight, more slots. */
function coldFavourite(id: string): WorkerRecord {
  const record = worker(id, {
    slots: 8,
    weight: 50,
    models: ['tiny'],
    load: { cpuPct: 1, memPct: 1 },
  });
  record.local = new Set(['tiny']);
  return record;
}

describe('readyFirst', () => {
  it('keeps the candidates as they are when all or none are ready', () => {
    const remote = [worker('a', { models: ['tiny'] }), worker('b', { models: ['tiny'] })];
    expect(readyFirst(remote, 'tiny')).toBe(remote);
    const cold = [llama('a', false), llama('b', false)];
    expect(readyFirst(cold, 'tiny')).toBe(cold);
  });

  it('keeps only the ready ones otherwise, remote workers counting as ready', () => {
    const mixed = [llama('a', false), llama('b', true), worker('c', { models: ['tiny'] })];
    expect(readyFirst(mixed, 'tiny').map((w) => w.status.id)).toEqual(['b', 'c']);
  });
});

for (const name of POLICY_NAMES) {
  describe(`${name} prefers a worker with the model loaded`, () => {
    it('gives every task to the warm worker while it has a free slot, then to the cold ones', () => {
      const policy = createPolicy(name);
      const workers = [coldFavourite('a-cold'), llama('b-warm', true, 3), llama('c-cold', false)];
      // Latency-aware measures first: the cold favourite looks fastest.
      policy.observe?.({ workerId: 'a-cold', model: 'tiny', processingMs: 1 });
      policy.observe?.({ workerId: 'b-warm', model: 'tiny', processingMs: 500 });
      const picked: string[] = [];
      for (let i = 0; i < 5; i++) {
        const target = policy.pick(available(workers, tiny), tiny);
        if (!target) break;
        target.active.set(`t${i}`, 1);
        picked.push(target.status.id);
      }
      expect(picked.slice(0, 3)).toEqual(['b-warm', 'b-warm', 'b-warm']);
      expect(picked).toHaveLength(5);
      expect(picked.slice(3)).not.toContain('b-warm');
    });

    it('prefers a worker whose model loads meanwhile', () => {
      const policy = createPolicy(name);
      const cold = llama('b', false);
      const workers = [coldFavourite('a'), cold];
      expect(policy.pick(available(workers, tiny), tiny)).toBeDefined();
      if (cold.heartbeat)
        cold.heartbeat.loaded = [{ name: 'tiny', memMb: 1, loadMs: 1, lastUsedAt: 1 }];
      expect(policy.pick(available(workers, tiny), tiny)?.status.id).toBe('b');
    });
  });
}
