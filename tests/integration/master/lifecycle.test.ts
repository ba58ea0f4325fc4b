/**
 * The task lifecycle's table of transitions, row by row, on a real Redis
 * store: what each transition writes to the store, which slot it takes or
 * frees, what it tells the worker and what the session hears, in that order.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../../common/errors.ts';
import { LOCK_DURATION_MS, STALLED_CHECK_MS } from '../../../master/src/dispatch/dispatcher.ts';
import { type Lease, LeaseTable, newLease } from '../../../master/src/dispatch/leases.ts';
import type { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import { openQueueStore, type QueueStore } from '../../../master/src/store/index.ts';
import { TaskStore, type TaskTaker } from '../../../master/src/store/task-store.ts';
import { TaskLifecycle } from '../../../master/src/tasks/lifecycle.ts';
import { SecretVault } from '../../../master/src/tasks/secret-vault.ts';
import { queueKeyOf, type TaskJobData } from '../../../master/src/tasks/task-data.ts';
import { TaskEvents } from '../../../master/src/tasks/task-events.ts';
import { type QueueKey, taskIdFor } from '../../../proto/src/queues.ts';
import { createTopics } from '../../../proto/src/topics.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const log = pino({ level: 'silent' });
const topics = createTopics('flota');
const key: QueueKey = { capability: 'any', model: 'echo' };
let redis: RedisServer;
let dataDir: string;

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'flota-lifecycle-'));
});

afterAll(async () => {
  await redis?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** The registry's slot accounting, as the lifecycle uses it. */
class Slots extends EventEmitter {
  readonly taken = new Map<string, string>();
  reserve(workerId: string, taskId: string): void {
    this.taken.set(taskId, workerId);
  }
  release(_workerId: string, taskId: string): void {
    this.taken.delete(taskId);
  }
  get(workerId: string) {
    return { status: { id: workerId, kind: 'cpu' as const } };
  }
}

interface World {
  namespace: string;
  queueStore: QueueStore;
  store: TaskStore;
  taker: TaskTaker;
  lifecycle: TaskLifecycle;
  leases: LeaseTable;
  slots: Slots;
  vault: SecretVault;
  /** Every message published (topic and JSON), in order. */
  published: Array<{ topic: string; body: Record<string, unknown> }>;
  /** Every event a session would hear, in order. */
  heard: Array<[string, Record<string, unknown>]>;
}

let world: World;
let counter = 0;

async function makeWorld(namespace: string, attempts = 2): Promise<World> {
  const queueStore = await openQueueStore({ url: redis.url, dataDir, namespace, log });
  const store = new TaskStore(queueStore);
  const taker = store.taker(key, {
    lockDurationMs: LOCK_DURATION_MS,
    stalledCheckMs: STALLED_CHECK_MS,
    maxStalls: attempts,
  });
  const leases = new LeaseTable();
  const slots = new Slots();
  const vault = new SecretVault();
  const events = new TaskEvents();
  const heard: World['heard'] = [];
  for (const name of ['queued', 'assigned', 'retrying', 'completed', 'failed'] as const) {
    events.on(name, (_session: string | undefined, event: object) =>
      heard.push([name, event as Record<string, unknown>]),
    );
  }
  const published: World['published'] = [];
  const lifecycle = new TaskLifecycle({
    store,
    leases,
    registry: slots as unknown as WorkerRegistry,
    events,
    vault,
    publisher: {
      publish: async (topic: string, payload: string | Buffer) => {
        published.push({ topic, body: JSON.parse(String(payload)) });
      },
    },
    topics,
    policy: { name: 'round-robin', pick: () => undefined },
    log,
  });
  lifecycle.start();
  return { namespace, queueStore, store, taker, lifecycle, leases, slots, vault, published, heard };
}

beforeEach(async () => {
  world = await makeWorld(randomName('flota'));
});

afterEach(async () => {
  world.lifecycle.stop();
  await world.queueStore.close();
});

/** A new task in the queue, as a submission adds it. */
async function submit(extra: Partial<TaskJobData> = {}, attempts = 2): Promise<TaskJobData> {
  const data = newTask(extra);
  await world.store.queue(queueKeyOf(data)).add(data, { order: 1, attempts });
  return data;
}

/** A task's data as a submission makes it, with a fresh id. */
function newTask(extra: Partial<TaskJobData> = {}): TaskJobData {
  counter += 1;
  return {
    taskId: taskIdFor(key, `t${counter}`),
    sessionId: 's1',
    prompt: `prompt ${counter}`,
    model: 'echo',
    gpu: false,
    params: {},
    priority: 0,
    submittedAt: Date.now(),
    timeoutMs: 60_000,
    ...extra,
  };
}

/** A lane's take with a slot reserved on `workerId`: the task runs there. */
async function run(workerId = 'w1'): Promise<Lease> {
  const held = await world.taker.take(newLease(workerId));
  expect(held).toBeDefined();
  expect(await world.lifecycle.taken(held!, workerId)).toBe('assigned');
  const lease = world.leases.get(held!.taskId);
  expect(lease).toBeDefined();
  return lease!;
}

const result = (lease: Lease, text: string) => ({
  text,
  workerId: lease.workerId,
  attempt: lease.attempt,
  assignedAt: lease.assignedAt,
  startedAt: lease.assignedAt,
  finishedAt: Date.now(),
  processingMs: 1,
  committedAt: Date.now(),
});

const heardNames = () => world.heard.map(([name]) => name);

describe('task lifecycle', () => {
  it('queued → running: a lease, the slot, the assignment with its secret, then "assigned"', async () => {
    const data = await submit();
    world.vault.put(data.taskId, 'sk-user');
    const lease = await run('w1');
    expect(world.slots.taken.get(data.taskId)).toBe('w1');
    expect(world.published).toEqual([
      {
        topic: topics.tasks('w1'),
        body: expect.objectContaining({
          taskId: data.taskId,
          lease: lease.token,
          apiKey: 'sk-user',
        }),
      },
    ]);
    expect(heardNames()).toEqual(['assigned']);
    expect((await world.store.read(data.taskId))?.state).toBe('running');
  });

  it('running → completed: stored, slot freed, secret dropped, "completed"; a second report is stale', async () => {
    const data = await submit();
    world.vault.put(data.taskId, 'sk-user');
    const lease = await run();
    expect(await world.lifecycle.complete(lease, result(lease, 'the answer'))).toBe('stored');
    expect(await world.lifecycle.complete(lease, result(lease, 'again'))).toBe('stale_lease');
    const stored = await world.store.read(data.taskId);
    expect(stored).toMatchObject({ state: 'completed', result: { text: 'the answer' } });
    expect(world.slots.taken.size).toBe(0);
    expect(world.vault.get(data.taskId)).toBeUndefined();
    expect(world.leases.get(data.taskId)).toBeUndefined();
    expect(heardNames()).toEqual(['assigned', 'completed']);
    expect(world.heard[1]?.[1]).toMatchObject({ id: data.taskId, result: 'the answer' });
  });

  it('running → failed: a final error is stored with its reason, never retried', async () => {
    const data = await submit();
    const lease = await run();
    expect(await world.lifecycle.fail(lease, 'bad key', 'provider_error', false)).toBe('stored');
    expect(await world.store.read(data.taskId)).toMatchObject({
      state: 'failed',
      failedReason: 'bad key',
    });
    expect(world.slots.taken.size).toBe(0);
    expect(world.heard.at(-1)).toEqual(['failed', expect.objectContaining({ error: 'bad key' })]);
  });

  it('running → retrying → queued, and failed once no attempt is left', async () => {
    const data = await submit({}, 2);
    const first = await run('w1');
    await world.lifecycle.retry(first, 'worker w1 lost (lost)');
    expect((await world.store.read(data.taskId))?.state).toBe('queued');
    expect(world.slots.taken.size).toBe(0);
    expect(world.heard.at(-1)).toEqual([
      'retrying',
      { taskId: data.taskId, attempt: 1, reason: 'worker w1 lost (lost)' },
    ]);
    // The retry waits out its backoff in the store, then a lane takes it again.
    const held = await waitFor(() => world.taker.take(newLease('w2')), {
      what: 'the retry to come out of its backoff',
    });
    await world.lifecycle.taken(held, 'w2');
    const second = world.leases.get(data.taskId) as Lease;
    expect(second.attempt).toBe(2);
    // A stale report from the first attempt changes nothing.
    expect(await world.lifecycle.complete(first, result(first, 'late'))).toBe('stale_lease');
    await world.lifecycle.retry(second, 'worker w2 lost (lost)');
    expect(await world.store.read(data.taskId)).toMatchObject({ state: 'failed' });
    expect(heardNames().slice(-1)).toEqual(['failed']);
  });

  it('queued → cancelled: marked and sent to the head of its queue; the next take ends it', async () => {
    const waiting = await submit();
    const endings: QueueKey[] = [];
    world.lifecycle.on('ending', (k) => endings.push(k));
    const marked = await world.lifecycle.end(waiting.taskId, {
      state: 'cancelled',
      reason: 'cancelled by the user',
      at: Date.now(),
    });
    expect(marked.state).toBe('queued');
    expect(marked.data.ended?.state).toBe('cancelled');
    expect(endings).toEqual([key]);
    // Taken by a lane with no worker in mind: ended, never assigned.
    const held = await world.taker.take('reaper');
    expect(held?.taskId).toBe(waiting.taskId);
    expect(await world.lifecycle.taken(held!, undefined)).toBe('ended');
    expect(await world.store.read(waiting.taskId)).toMatchObject({
      state: 'failed',
      data: { ended: { state: 'cancelled' } },
    });
    expect(world.published).toEqual([]);
    expect(world.heard).toEqual([
      ['failed', expect.objectContaining({ id: waiting.taskId, state: 'cancelled' })],
    ]);
  });

  it('running → cancelled: the worker is told to stop before the ending is stored', async () => {
    const data = await submit();
    const lease = await run('w1');
    const ended = await world.lifecycle.end(data.taskId, {
      state: 'cancelled',
      reason: 'cancelled by the user',
      at: Date.now(),
    });
    expect(ended).toMatchObject({ state: 'failed', data: { ended: { state: 'cancelled' } } });
    expect(world.published.at(-1)).toEqual({
      topic: topics.control('w1'),
      body: { type: 'cancel', taskId: data.taskId, attempt: lease.attempt },
    });
    expect(world.slots.taken.size).toBe(0);
    expect(heardNames()).toEqual(['assigned', 'failed']);
    // Its worker's late answer is stale; a second cancel is a conflict.
    expect(await world.lifecycle.complete(lease, result(lease, 'late'))).toBe('stale_lease');
    await expect(
      world.lifecycle.end(data.taskId, { state: 'cancelled', reason: 'again', at: Date.now() }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it('a task put back when a lane took it with nobody to run it, and nothing to end', async () => {
    const data = await submit();
    const held = await world.taker.take('reaper');
    expect(await world.lifecycle.taken(held!, undefined)).toBe('put_back');
    expect((await world.store.read(data.taskId))?.state).toBe('queued');
    expect(world.heard).toEqual([]);
  });

  it('— → completed from the cache: stored completed at once, never in a queue', async () => {
    const data = newTask({ prompt: 'asked before' });
    await world.lifecycle.answered(data, { text: 'from before', cachedAt: 5 }, 'c1');
    expect(await world.store.read(data.taskId)).toMatchObject({
      state: 'completed',
      result: { text: 'from before', cache: { hit: true, cachedAt: 5 } },
    });
    expect(await world.store.queue(key).counts()).toMatchObject({ waiting: 0, prioritized: 0 });
    expect(heardNames()).toEqual(['queued', 'completed']);
  });

  it('(none) → running: another master adopts the attempt by its lease, the old one loses it', async () => {
    const data = await submit();
    const lease = await run('w1');
    const other = await makeWorld(world.namespace);
    try {
      const held = await other.store.queue(key).adopt(data.taskId, lease.token, LOCK_DURATION_MS);
      expect(held).not.toBe('gone');
      expect(held).not.toBe('stale');
      const adopted = await other.lifecycle.adopted(held as never, 'w1');
      expect(adopted).toMatchObject({
        taskId: data.taskId,
        attempt: lease.attempt,
        confirmed: true,
      });
      expect(await other.store.queue(key).adopt(data.taskId, 'not-its-lock', 1_000)).toBe('stale');
      expect(await other.lifecycle.complete(adopted!, result(adopted!, 'adopted'))).toBe('stored');
      expect((await world.store.read(data.taskId))?.result?.text).toBe('adopted');
    } finally {
      other.lifecycle.stop();
      await other.queueStore.close();
    }
  });
});
