/**
 * Priorities, re-prioritisation, fairness between sessions within a priority,
 * and label requirements, against a real master (Redis store, embedded aedes)
 * and real echo workers with one slot, so tasks run strictly one at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { Ack } from '../../../proto/src/socket-events.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { SessionClient } from './session-client.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

let redis: RedisServer;
let master: Awaited<ReturnType<typeof startTestMaster>>;
const workers: WorkerHandle[] = [];
const clients: SessionClient[] = [];

/** Echo waits this long per 16-character chunk: a short prompt takes two chunks. */
const ECHO_DELAY_MS = 40;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

const sessionId = () => randomName('sess').replace(/[^A-Za-z0-9_-]/g, '');
const getTask = async (id: string) => (await api<TaskView>(master, `/api/tasks/${id}`)).body;

async function submit(body: Record<string, unknown>, session?: string): Promise<string> {
  const res = await api<{ id: string }>(master, '/api/tasks', {
    body: { model: 'echo', ...body },
    headers: session ? { 'x-flota-session': session } : {},
  });
  expect(res.status).toBe(202);
  return res.body.id;
}

async function finished(ids: string[], timeoutMs = 30_000): Promise<TaskView[]> {
  return waitFor(
    async () => {
      const views = await Promise.all(ids.map(getTask));
      return views.every((v) => TERMINAL.has(v.state)) ? views : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `${ids.length} tasks to finish` },
  );
}

const assignedAt = (v: TaskView) => v.timings.assignedAt ?? Number.POSITIVE_INFINITY;

/**
 * Occupies the only slot of `w-one` with a long task (about 8 s) until
 * released by a cancel, so tasks submitted meanwhile all wait in the queue.
 */
async function occupyWorker(): Promise<{ release(): Promise<void> }> {
  const id = await submit({ prompt: 'b'.repeat(16 * 200), timeoutMs: 120_000 });
  await waitFor(async () => (await getTask(id)).state === 'running', { what: 'blocker running' });
  return {
    async release() {
      expect((await api(master, `/api/tasks/${id}`, { method: 'DELETE' })).status).toBe(200);
    },
  };
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url });
  workers.push(
    await startTestWorker(master, {
      WORKER_ID: 'w-one',
      SLOTS: '1',
      ECHO_DELAY_MS: String(ECHO_DELAY_MS),
    }),
  );
  await waitFor(
    async () =>
      (await api<{ workers: WorkerView[] }>(master, '/api/workers')).body.workers.length === 1 ||
      undefined,
    { what: 'worker online' },
  );
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(workers.map((w) => w.close()));
  await master?.close();
  await redis?.stop();
});

describe('priorities', () => {
  it('runs higher priorities first while the worker is busy', async () => {
    const blocker = await occupyWorker();
    const low: string[] = [];
    const high: string[] = [];
    for (let i = 0; i < 3; i += 1) low.push(await submit({ prompt: `low ${i}`, priority: 0 }));
    for (let i = 0; i < 3; i += 1) high.push(await submit({ prompt: `high ${i}`, priority: 900 }));
    await blocker.release();
    const views = await finished([...low, ...high]);
    expect(views.every((v) => v.state === 'completed')).toBe(true);
    const lows = views.slice(0, 3);
    const highs = views.slice(3);
    expect(highs.map((v) => v.priority)).toEqual([900, 900, 900]);
    expect(Math.max(...highs.map(assignedAt))).toBeLessThan(Math.min(...lows.map(assignedAt)));
    // Within a priority, one session (here: the anonymous one) keeps its order.
    const order = [...views].sort((a, b) => assignedAt(a) - assignedAt(b)).map((v) => v.id);
    expect(order).toEqual([...high, ...low]);
  });

  it('PATCH moves a queued task above the others; a finished task is a conflict', async () => {
    const blocker = await occupyWorker();
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) ids.push(await submit({ prompt: `patch ${i}`, priority: 5 }));
    const last = ids[2] as string;
    const moved = await api<TaskView>(master, `/api/tasks/${last}`, {
      method: 'PATCH',
      body: { priority: 100 },
    });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ id: last, state: 'queued', priority: 100 });
    for (const bad of [{ priority: 1001 }, { priority: -1 }, { priority: 1.5 }, {}, { p: 1 }]) {
      const res = await api<{ code: string }>(master, `/api/tasks/${last}`, {
        method: 'PATCH',
        body: { ...bad },
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('bad_request');
    }
    await blocker.release();
    const views = await finished(ids);
    const order = [...views].sort((a, b) => assignedAt(a) - assignedAt(b)).map((v) => v.id);
    expect(order).toEqual([last, ids[0], ids[1]]);
    const late = await api<{ code: string }>(master, `/api/tasks/${last}`, {
      method: 'PATCH',
      body: { priority: 7 },
    });
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('conflict');
    const unknown = await api<{ code: string }>(master, `/api/tasks/any.echo.${'0'.repeat(32)}`, {
      method: 'PATCH',
      body: { priority: 7 },
    });
    expect(unknown.status).toBe(404);
  });

  it('task:reprioritize moves a queued task of the session; others are refused', async () => {
    const client = new SessionClient(master.httpUrl, sessionId());
    clients.push(client);
    await waitFor(() => client.epoch, { what: 'hello' });
    const blocker = await occupyWorker();
    const first = await client.submit('socket first', { model: 'echo' });
    const second = await client.submit('socket second', { model: 'echo' });
    const ask = (payload: unknown) =>
      client.socket.timeout(10_000).emitWithAck('task:reprioritize', payload) as Promise<
        Ack<{ state: string; priority: number }>
      >;
    expect(await ask({ taskId: second, priority: 50 })).toEqual({
      ok: true,
      state: 'queued',
      priority: 50,
    });
    expect((await ask({ taskId: second, priority: 5000 })).ok).toBe(false);
    const stranger = new SessionClient(master.httpUrl, sessionId());
    clients.push(stranger);
    await waitFor(() => stranger.epoch, { what: 'hello' });
    const foreign = (await stranger.socket
      .timeout(10_000)
      .emitWithAck('task:reprioritize', { taskId: first, priority: 9 })) as Ack<object>;
    expect(foreign.ok).toBe(false);
    await blocker.release();
    const [a, b] = await Promise.all([client.waitTerminal(first), client.waitTerminal(second)]);
    const at = (e: typeof a) => Number((e.payload.timings as { assignedAt: number }).assignedAt);
    expect(at(b)).toBeLessThan(at(a));
    expect((await ask({ taskId: second, priority: 1 })).ok).toBe(false);
  });
});

describe('fairness within a priority', () => {
  it('serves a late session between the tasks of a session that floods the queue', async () => {
    const a = sessionId();
    const b = sessionId();
    const aIds = await Promise.all(
      Array.from({ length: 40 }, (_, i) => submit({ prompt: `flood task a-${i}` }, a)),
    );
    const bIds = await Promise.all(
      Array.from({ length: 5 }, (_, i) => submit({ prompt: `late task b-${i}` }, b)),
    );
    const views = await finished([...aIds, ...bIds], 60_000);
    expect(views.every((v) => v.state === 'completed')).toBe(true);
    const aViews = views.slice(0, 40);
    const bViews = views.slice(40);
    const bDone = Math.max(...bViews.map((v) => v.timings.finishedAt ?? 0));
    const aBefore = aViews.filter((v) => (v.timings.finishedAt ?? 0) < bDone).length;
    // Start-time fair queuing: B's tasks get rounds V..V+4, where V is the round of A's
    // latest task taken when B's last task came in. Only A's rounds 0..V+4 can run before
    // B's last, so at most (A's tasks assigned by then) + 4 of them finish first.
    const bLastSubmitted = Math.max(...bViews.map((v) => v.timings.submittedAt));
    const aAssignedBefore = aViews.filter((v) => assignedAt(v) <= bLastSubmitted).length;
    expect(aBefore).toBeLessThanOrEqual(aAssignedBefore + 4);
    // With ~100 ms per task, far fewer than 10 of A's tasks start while B submits (2 to 5 in
    // practice), so B's five all finish before A's 15th; first come, first served would put
    // them after all 40.
    expect(aBefore).toBeLessThanOrEqual(14);
  });
});

describe('label requirements', () => {
  it('waits, with a reason, for a worker carrying the labels, then runs only there', async () => {
    const client = new SessionClient(master.httpUrl, sessionId());
    clients.push(client);
    await waitFor(() => client.epoch, { what: 'hello' });
    const labelled = await client.submit('only in the eu', {
      model: 'echo',
      requires: { labels: { zone: 'eu' } },
    });
    expect(labelled).toMatch(/^any\.echo@zone=eu\./);
    const queued = await waitFor(
      () => client.accepted.find((e) => e.name === 'task:queued' && e.payload.taskId === labelled),
      { what: 'task:queued' },
    );
    expect(queued.payload.waitingFor).toBe('no online worker serves echo with labels zone=eu yet');
    // The unlabelled worker is free and serves a later, unlabelled task, but not this one.
    const plain = await client.submit('anywhere', { model: 'echo' });
    expect((await client.waitTerminal(plain)).payload).toMatchObject({ workerId: 'w-one' });
    expect(await getTask(labelled)).toMatchObject({
      state: 'queued',
      requires: { gpu: false, labels: { zone: 'eu' } },
    });
    workers.push(
      await startTestWorker(master, { WORKER_ID: 'w-eu', SLOTS: '1', LABELS: 'zone=eu' }),
    );
    const done = await client.waitTerminal(labelled);
    expect(done.payload).toMatchObject({ state: 'completed', workerId: 'w-eu' });
    // With both online, labelled tasks still go only to w-eu.
    const more = await Promise.all(
      [1, 2, 3].map((i) =>
        client.submit(`eu ${i}`, { model: 'echo', requires: { labels: { zone: 'eu' } } }),
      ),
    );
    for (const id of more) {
      expect((await client.waitTerminal(id)).payload).toMatchObject({ workerId: 'w-eu' });
    }
  });
});

describe('a label set too long to spell out', () => {
  it('is named by a digest; another master finds, reads and cancels the task from its id', async () => {
    const labels = { region: 'europe-west-4', datacenter: 'frankfurt-2', rack: 'r17' };
    const id = await submit({ prompt: 'far away', requires: { labels } });
    expect(id).toMatch(/^any\.echo@=[0-9a-f]{16}\.[A-Za-z0-9_-]+$/);
    // Same store and namespace, no workers: its lane for this queue starts blind.
    const other = await startTestMaster({
      queueUrl: redis.url,
      env: { QUEUE_NAMESPACE: master.config.QUEUE_NAMESPACE },
    });
    try {
      const seen = await api<TaskView>(other, `/api/tasks/${id}`);
      expect(seen.body).toMatchObject({ state: 'queued', requires: { labels } });
      const cancelled = await api<TaskView>(other, `/api/tasks/${id}`, { method: 'DELETE' });
      expect(cancelled.status).toBe(200);
      // Marked at once; finished (finishedOn, so totalMs) only once a lane took and failed it.
      const ended = await waitFor(
        async () => {
          const view = await getTask(id);
          return view.timings.totalMs !== undefined ? view : undefined;
        },
        { what: 'the blind lane of the other master to end the task' },
      );
      expect(ended.state).toBe('cancelled');
    } finally {
      await other.close();
    }
  });
});
