import { describe, expect, it } from 'vitest';
import { createLeastConnectionsPolicy } from '../../../master/src/dispatch/policies/least-connections.ts';
import { createRoundRobinPolicy } from '../../../master/src/dispatch/policies/round-robin.ts';
import type { DispatchPolicy } from '../../../master/src/dispatch/policies/types.ts';
import type { WorkerRecord } from '../../../master/src/registry/worker-record.ts';

function worker(id: string, slots = 2, active = 0): WorkerRecord {
  return {
    status: {
      state: 'online',
      id,
      kind: 'cpu',
      models: ['echo'],
      providers: ['echo'],
      slots,
      labels: {},
      version: 'test',
      host: 'h',
      heartbeatMs: 1000,
      startedAt: 1,
    },
    state: 'online',
    lastSeen: 0,
    active: new Map(Array.from({ length: active }, (_, i) => [`t${i}`, 1])),
  };
}

const need = { model: 'echo', gpu: false };

/** Cases every policy must pass. */
function policyContract(name: string, create: () => DispatchPolicy) {
  describe(`${name} (policy contract)`, () => {
    it('returns undefined when there is no candidate', () => {
      expect(create().pick([], need)).toBeUndefined();
    });
    it('always picks one of the candidates', () => {
      const policy = create();
      const candidates = [worker('a'), worker('b'), worker('c')];
      for (let i = 0; i < 20; i++) expect(candidates).toContain(policy.pick(candidates, need));
    });
    it('spreads work over equal idle workers', () => {
      const policy = create();
      const candidates = [worker('a'), worker('b')];
      const picks = new Set(
        Array.from({ length: 4 }, () => policy.pick(candidates, need)?.status.id),
      );
      expect(picks).toEqual(new Set(['a', 'b']));
    });
  });
}

policyContract('round-robin', createRoundRobinPolicy);
policyContract('least-connections', createLeastConnectionsPolicy);

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
    const busy = worker('a', 2, 1); // 50 %
    const big = worker('b', 8, 2); // 25 %
    const full = worker('c', 1, 1); // 100 %
    expect(policy.pick([busy, big, full], need)?.status.id).toBe('b');
  });
  it('rotates among tied workers', () => {
    const policy = createLeastConnectionsPolicy();
    const ids = Array.from(
      { length: 4 },
      () => policy.pick([worker('x', 2, 1), worker('y', 4, 2)], need)?.status.id,
    );
    expect(ids).toEqual(['x', 'y', 'x', 'y']);
  });
});
