import { describe, expect, it } from 'vitest';
import type { PoolSpec } from '../../../autoscaler/src/config.ts';
import { observePool, poolBacklog, poolWorkers } from '../../../autoscaler/src/observe.ts';
import { queueName } from '../../../proto/src/queues.ts';
import { cpuPool, fleet, worker } from './support.ts';

const gpuPool: PoolSpec = { ...cpuPool, name: 'gpus', capability: 'gpu', workerPrefix: 'gpus-' };
const echo = queueName({ capability: 'any', model: 'echo' });
const echoEu = queueName({ capability: 'any', model: 'echo', labels: { zone: 'eu' } });
const llama = queueName({ capability: 'any', model: 'llama3' });
const gpuEcho = queueName({ capability: 'gpu', model: 'echo' });

describe('observePool', () => {
  it("counts the pool's own online workers: their slots and running tasks", () => {
    const view = fleet([
      worker('local-1', { active: 2 }),
      worker('local-2', { active: 1, slots: 4 }),
      worker('local-3', { state: 'offline', active: 1 }),
      worker('remote-1', { active: 2 }),
      worker('local-9', { kind: 'gpu', active: 1 }),
    ]);
    expect(observePool(cpuPool, view, 3)).toEqual({
      replicas: 3,
      backlog: 0,
      active: 3,
      slots: 6,
      online: 2,
    });
    expect(poolWorkers(cpuPool, view.workers).map((w) => w.id)).toEqual([
      'local-1',
      'local-2',
      'local-3',
    ]);
  });

  it('counts waiting, prioritised and retrying tasks as backlog, not running or finished ones', () => {
    const view = fleet([worker('local-1')], {
      [echo]: { waiting: 2, prioritized: 3, delayed: 1, active: 4, completed: 50, failed: 1 },
    });
    expect(observePool(cpuPool, view, 1).backlog).toBe(6);
  });

  it('counts only queues the pool could drain: its class, its models, its labels', () => {
    const queues = {
      [echo]: { waiting: 1 },
      [echoEu]: { waiting: 10 },
      [llama]: { waiting: 100 },
      [gpuEcho]: { waiting: 1_000 },
    };
    const online = [worker('local-1')];
    expect(poolBacklog(cpuPool, fleet(online, queues).metrics, online)).toBe(1);
    const eu = [worker('local-1', { labels: { zone: 'eu' } })];
    expect(poolBacklog(cpuPool, fleet(eu, queues).metrics, eu)).toBe(11);
    const gpus = [worker('gpus-1', { kind: 'gpu' })];
    expect(poolBacklog(gpuPool, fleet(gpus, queues).metrics, gpus)).toBe(1_000);
  });

  it('with none of the pool ever seen, counts every queue of its class (so it can wake from zero)', () => {
    const queues = { [echo]: { waiting: 1 }, [llama]: { waiting: 2 }, [gpuEcho]: { waiting: 4 } };
    expect(poolBacklog(cpuPool, fleet([], queues).metrics, undefined)).toBe(3);
    expect(poolBacklog(gpuPool, fleet([], queues).metrics, undefined)).toBe(4);
    expect(observePool(cpuPool, fleet([], queues), 0).backlog).toBe(3);
  });

  it('with none of the pool online now, judges by what its workers served when last seen', () => {
    // A pool at zero must not wake for a model it never served, then shrink, then wake again.
    const queues = { [echo]: { waiting: 1 }, [llama]: { waiting: 2 } };
    const last = [{ models: ['echo'], labels: {} }];
    expect(observePool(cpuPool, fleet([], queues), 0, last).backlog).toBe(1);
    const online = [worker('local-1', { models: ['llama3'] })];
    expect(observePool(cpuPool, fleet(online, queues), 1, last).backlog).toBe(2);
  });

  it('counts a queue named by a label digest only while nothing is known of the pool', () => {
    const long = { region: 'europe-west-4', tier: 'gold-dedicated', rack: 'r12' };
    const digest = queueName({ capability: 'any', model: 'echo', labels: long });
    expect(digest).toContain('@=');
    const queues = { [digest]: { waiting: 5 } };
    const carrying = [worker('local-1', { labels: long })];
    expect(poolBacklog(cpuPool, fleet(carrying, queues).metrics, carrying)).toBe(0);
    expect(poolBacklog(cpuPool, fleet([], queues).metrics, undefined)).toBe(5);
  });

  it('ignores names that are not task queues', () => {
    const view = fleet([], { 'not-a-queue': { waiting: 9 } });
    expect(observePool(cpuPool, view, 0).backlog).toBe(0);
  });
});
