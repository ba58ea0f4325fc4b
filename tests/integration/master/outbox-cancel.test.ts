/**
 * Exactly-once delivery to a session (replay after a reconnect, resync from
 * the store in a new epoch), idempotent submissions, cancel and timeouts,
 * against a real master (Redis store, embedded aedes) and a real worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { randomName } from '../../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { SessionClient } from './session-client.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

let redis: RedisServer;
let master: Awaited<ReturnType<typeof startTestMaster>>;
let worker: WorkerHandle;
const clients: SessionClient[] = [];
const session = () => {
  const client = new SessionClient(
    master.httpUrl,
    randomName('sess').replace(/[^A-Za-z0-9_-]/g, ''),
  );
  clients.push(client);
  return client;
};
const getTask = async (id: string) => (await api<TaskView>(master, `/api/tasks/${id}`)).body;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url });
  worker = await startTestWorker(master, {
    WORKER_ID: 'w-slow',
    SLOTS: '1',
    ECHO_DELAY_MS: '400',
  });
  await waitFor(
    async () =>
      (await api<{ workers: unknown[] }>(master, '/api/workers')).body.workers.length === 1 ||
      undefined,
    { what: 'worker online' },
  );
});

afterAll(async () => {
  for (const c of clients) c.close();
  await worker?.close();
  await master?.close();
  await redis?.stop();
});

describe('session outbox', () => {
  it('numbers events, and a reconnecting session gets only what it missed, once', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    const first = await client.submit('first');
    await client.waitTerminal(first);
    const seenBefore = client.accepted.length;
    client.socket.disconnect();
    // Finished while the session was away: REST submission tied to the session.
    const { body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt: 'while away' },
      headers: { 'x-flota-session': client.sessionId },
    });
    await waitFor(async () => ((await getTask(body.id)).state === 'completed' ? true : undefined), {
      what: 'task done',
    });
    client.socket.connect();
    const done = await client.waitTerminal(body.id);
    expect(done.payload.result).toBe('echo: while away');
    expect(client.hellos.at(-1)?.resumed).toBe('replay');
    expect(client.accepted.slice(0, seenBefore).every((e) => e.outboxSeq > 0)).toBe(true);
    const seqs = client.accepted.map((e) => e.outboxSeq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(client.terminal(first)).toHaveLength(1);
    expect(client.terminal(body.id)).toHaveLength(1);
  });

  it('resyncs from the store when the epoch is unknown (a restarted master)', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    const id = await client.submit('remember me');
    await client.waitTerminal(id);
    // Same session, as if it came back to a master that lost its outbox.
    const again = new SessionClient(master.httpUrl, client.sessionId);
    clients.push(again);
    again.epoch = 'an-epoch-long-gone';
    again.lastSeq = 40;
    (again as unknown as { known: Set<string> }).known.add(id);
    again.socket.disconnect().connect();
    const got = await again.waitTerminal(id);
    expect(again.hellos.at(-1)?.resumed).toBe('resync');
    expect(got.payload).toMatchObject({ id, state: 'completed', result: 'echo: remember me' });
    expect(again.terminal(id)).toHaveLength(1);
  });

  it('treats a resubmission with the same clientId or Idempotency-Key as the same task', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    const a = await client.submit('once', { clientId: 'c-1' });
    const b = await client.submit('once', { clientId: 'c-1' });
    expect(b).toBe(a);
    await client.waitTerminal(a);
    expect(client.terminal(a)).toHaveLength(1);
    const post = () =>
      api<{ id: string }>(master, '/api/tasks', {
        body: { prompt: 'keyed' },
        headers: { 'idempotency-key': 'k-123' },
      });
    const [x, y] = [await post(), await post()];
    expect(x.status).toBe(202);
    expect(y.body.id).toBe(x.body.id);
  });
});

describe('cancel and timeouts', () => {
  it('cancels a queued task (REST); a second cancel is a conflict', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    const id = await client.submit('nobody serves this', {
      requires: { labels: { zone: 'nowhere' } },
    });
    const res = await api<TaskView>(master, `/api/tasks/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('cancelled');
    const ended = await client.waitTerminal(id);
    expect(ended).toMatchObject({ name: 'task:failed', payload: { state: 'cancelled' } });
    expect((await getTask(id)).state).toBe('cancelled');
    expect((await api(master, `/api/tasks/${id}`, { method: 'DELETE' })).status).toBe(409);
    expect(client.terminal(id)).toHaveLength(1);
  });

  it('cancels a running task (Socket.IO): the worker stops and its slot serves the next task', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    const long = await client.submit('x'.repeat(40), { timeoutMs: 60_000 });
    await waitFor(
      () => client.accepted.find((e) => e.name === 'task:assigned' && e.payload.taskId === long),
      { what: 'running' },
    );
    const reply = await client.cancel(long);
    expect(reply).toMatchObject({ ok: true, state: 'cancelled' });
    const next = await client.submit('after the cancel');
    expect((await client.waitTerminal(next)).payload.state).toBe('completed');
    expect(client.terminal(long)[0]?.payload).toMatchObject({ state: 'cancelled' });
    const stranger = new SessionClient(master.httpUrl, 'someone-else-0001');
    clients.push(stranger);
    await waitFor(() => stranger.epoch, { what: 'hello' });
    const other = await stranger.cancel(long);
    expect(other.ok).toBe(false);
  });

  it('fails a queued task whose timeout passes while no worker can take it', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    const id = await client.submit('wait forever', {
      requires: { labels: { zone: 'nowhere' } },
      timeoutMs: 1_000,
    });
    const ended = await client.waitTerminal(id, 15_000);
    expect(ended.payload).toMatchObject({ state: 'failed' });
    expect(String(ended.payload.error)).toMatch(/timed out after 1 s in the queue/);
  });

  it('fails a running task that outlives its timeout', async () => {
    const client = session();
    await waitFor(() => client.epoch, { what: 'hello' });
    // 400 ms per chunk: this answer takes seconds, the timeout is one.
    const id = await client.submit('y'.repeat(200), { timeoutMs: 1_000 });
    const ended = await client.waitTerminal(id, 15_000);
    expect(ended.payload).toMatchObject({ state: 'failed' });
    expect(String(ended.payload.error)).toMatch(/deadline|timed out/i);
  });
});
