import { describe, expect, it } from 'vitest';
import { consoleWorkers, healthOf } from '../../../master/src/realtime/console-workers.ts';
import { WorkerTally } from '../../../master/src/realtime/worker-tally.ts';
import { TaskEvents } from '../../../master/src/tasks/task-events.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { workerView } from '../../helpers/worker-view.ts';

const task = (workerId: string | undefined, state: TaskView['state']): TaskView => ({
  id: 't1',
  state,
  model: 'echo',
  priority: 0,
  requires: { gpu: false },
  attempt: 1,
  workerId,
  timings: { submittedAt: 0 },
});

describe('healthOf', () => {
  const now = 10_000;
  it('is offline for an offline worker, whatever else it says', () => {
    expect(healthOf({ state: 'offline', draining: false, lastSeen: now }, 1_000, now)).toBe(
      'offline',
    );
  });
  it('is degraded once heartbeats are more than two periods late', () => {
    const view = { state: 'online' as const, draining: true, lastSeen: now - 2_001 };
    expect(healthOf(view, 1_000, now)).toBe('degraded');
    expect(healthOf({ ...view, lastSeen: now - 2_000 }, 1_000, now)).toBe('draining');
  });
  it('is online for a worker taking work', () => {
    expect(healthOf({ state: 'online', draining: false, lastSeen: now }, 1_000, now)).toBe(
      'online',
    );
  });
});

describe('WorkerTally', () => {
  it("counts each worker's completed and failed tasks, not cancellations or cached answers", () => {
    const events = new TaskEvents();
    const tally = new WorkerTally(events);
    events.emit('completed', undefined, task('w1', 'completed'));
    events.emit('completed', undefined, task('w1', 'completed'));
    events.emit('failed', undefined, task('w1', 'failed'));
    events.emit('failed', undefined, task('w1', 'cancelled'));
    events.emit('completed', undefined, task(undefined, 'completed'));
    expect(tally.of('w1')).toEqual({ done: 2, failed: 1 });
    expect(tally.of('w2')).toEqual({ done: 0, failed: 0 });
    tally.close();
    events.emit('completed', undefined, task('w1', 'completed'));
    expect(tally.of('w1').done).toBe(2);
  });

  it('forgets the least recently counted worker beyond its bound', () => {
    const events = new TaskEvents();
    const tally = new WorkerTally(events, 2);
    for (const id of ['a', 'b', 'a', 'c'])
      events.emit('completed', undefined, task(id, 'completed'));
    expect(tally.of('b').done).toBe(0);
    expect(tally.of('a').done).toBe(2);
    expect(tally.of('c').done).toBe(1);
  });
});

describe('consoleWorkers', () => {
  it("adds each listed worker's health and counts to the registry's panel", () => {
    const now = 50_000;
    const views = [
      workerView({ id: 'w1', lastSeen: now }),
      workerView({ id: 'w2', lastSeen: now - 5_000 }),
    ];
    const fleet = { online: 2, offline: 0, slots: 4, active: 0, models: {} };
    const registry = {
      panel: () => ({ workers: views, models: ['echo'], fleet }),
      get: (id: string) => ({ status: { heartbeatMs: id === 'w1' ? 1_000 : 500 } }) as never,
    };
    const tally = { of: (id: string) => ({ done: id === 'w1' ? 3 : 0, failed: 0 }) };
    const listed = consoleWorkers(registry, tally, now);
    expect(listed).toMatchObject({ at: now, models: ['echo'], fleet });
    expect(listed.workers.map((w) => [w.id, w.health, w.done])).toEqual([
      ['w1', 'online', 3],
      ['w2', 'degraded', 0],
    ]);
  });
});
