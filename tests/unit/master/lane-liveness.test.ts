/**
 * A take is a store round trip: the worker a lane picked can go offline (a
 * Last Will) or restart (a new process, a new record) while it is in flight.
 * The task then goes back to its queue, never to the written-off process,
 * and a restarted worker gets it on its new record, once.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lane } from '../../../master/src/dispatch/lane.ts';
import type { DispatchPolicy } from '../../../master/src/dispatch/policies/types.ts';
import type { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import type { HeldTask, TaskQueueHandle, TaskTaker } from '../../../master/src/store/task-store.ts';
import type { TakeOutcome } from '../../../master/src/tasks/lifecycle.ts';
import type { WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type FakeMqtt, startFakeRegistry } from './fake-registry.ts';

const topics = createTopics();
const online = (id: string, startedAt: number): WorkerOnline => ({
  state: 'online',
  id,
  kind: 'cpu',
  models: ['echo'],
  providers: ['echo'],
  slots: 1,
  labels: {},
  weight: 1,
  version: 't',
  host: 'h',
  heartbeatMs: 1_000,
  startedAt,
});
const first: DispatchPolicy = { name: 'first', pick: (candidates) => candidates[0] };

/** One queued task: each take in flight waits until the test lets it finish. */
class OneTaskQueue {
  queued = true;
  takes = 0;
  putBacks = 0;
  private release: Array<() => void> = [];

  /** Lets every take in flight finish. */
  finishTakes(): void {
    for (const go of this.release.splice(0)) go();
  }

  readonly taker = {
    take: async (): Promise<HeldTask | undefined> => {
      this.takes += 1;
      await new Promise<void>((resolve) => this.release.push(resolve));
      if (!this.queued) return undefined;
      this.queued = false;
      return this.held();
    },
  };

  private held(): HeldTask {
    return {
      taskId: 't1',
      attempt: 1,
      order: undefined,
      data: { priority: 0 },
      putBack: async () => {
        this.putBacks += 1;
        this.queued = true;
      },
    } as unknown as HeldTask;
  }
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

async function startLane() {
  const { mqtt, registry } = await startFakeRegistry(topics);
  const queue = new OneTaskQueue();
  const taken = vi.fn(
    async (_held: HeldTask, _workerId: string | undefined): Promise<TakeOutcome> => 'assigned',
  );
  const lane = new Lane(
    { capability: 'any', model: 'echo' },
    {
      registry: registry as WorkerRegistry,
      policy: first,
      log: pino({ level: 'silent' }),
      taker: queue.taker as unknown as TaskTaker,
      queue: {
        headCount: async () => 0,
        peek: async () => undefined,
      } as unknown as TaskQueueHandle,
      taken,
    },
  );
  stop = async () => {
    queue.finishTakes();
    const closing = lane.close();
    queue.finishTakes();
    await closing;
    registry.stop();
  };
  return { mqtt: mqtt as FakeMqtt, registry, queue, taken, lane };
}

describe('a lane whose picked worker goes away during the take', () => {
  it('puts the task back when the worker went offline, and assigns nothing', async () => {
    const { mqtt, queue, taken, lane } = await startLane();
    mqtt.deliver(topics.status('w1'), online('w1', 1));
    lane.start();
    await waitFor(() => queue.takes >= 1, { what: 'a take in flight' });
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'lost' });
    queue.finishTakes();
    await waitFor(() => queue.putBacks === 1, { what: 'the task put back' });
    expect(taken).not.toHaveBeenCalled();
    expect(queue.queued).toBe(true);
  });

  it("gives the task to the restarted worker's new record, once", async () => {
    const { mqtt, registry, queue, taken, lane } = await startLane();
    mqtt.deliver(topics.status('w1'), online('w1', 1));
    const before = registry.get('w1');
    lane.start();
    await waitFor(() => queue.takes >= 1, { what: 'a take in flight' });
    // Same id, new process: the old record is written off, a new one is online.
    mqtt.deliver(topics.status('w1'), online('w1', 2));
    expect(registry.get('w1')).not.toBe(before);
    queue.finishTakes();
    await waitFor(() => queue.putBacks === 1, { what: 'the task put back' });
    // The put-back wakes the lane: the next take is for the new record.
    await waitFor(
      () => {
        queue.finishTakes();
        return taken.mock.calls.length === 1;
      },
      { what: 'the task assigned to the new process' },
    );
    expect(taken.mock.calls[0]?.[1]).toBe('w1');
    expect(queue.putBacks).toBe(1);
  });
});
