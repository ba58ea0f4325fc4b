/**
 * A master that stops while tasks run and wait: a new master on the same
 * store, broker and ports adopts the running attempt from the worker (no
 * retry, same worker, same attempt), runs the queued task, and the session
 * that reconnects gets each answer exactly once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { freePort } from '../../helpers/free-port.ts';
import { type MosquittoServer, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { SessionClient } from './session-client.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

let redis: RedisServer;
let mosquitto: MosquittoServer;
let worker: WorkerHandle | undefined;
let client: SessionClient | undefined;
const masters: Array<Awaited<ReturnType<typeof startTestMaster>>> = [];

beforeAll(async () => {
  [redis, mosquitto] = await Promise.all([startRedis(), startMosquitto()]);
});

afterAll(async () => {
  client?.close();
  await worker?.close();
  for (const m of masters) await m.close();
  await Promise.all([redis?.stop(), mosquitto?.stop()]);
});

it('adopts the running attempt and runs the queued task after a master restart', async () => {
  const env = {
    PORT: String(await freePort()),
    GRPC_PORT: String(await freePort()),
    QUEUE_NAMESPACE: 'restart_test',
  };
  const start = async () => {
    const m = await startTestMaster({ queueUrl: redis.url, mqttUrl: mosquitto.url, env });
    masters.push(m);
    return m;
  };
  const first = await start();
  worker = await startTestWorker(first, { WORKER_ID: 'w-1', SLOTS: '1', ECHO_DELAY_MS: '150' });
  await waitFor(
    async () =>
      (await api<{ workers: unknown[] }>(first, '/api/workers')).body.workers.length
        ? true
        : undefined,
    { what: 'worker online' },
  );
  client = new SessionClient(first.httpUrl, 'restart-session-1');
  await waitFor(() => client?.epoch, { what: 'hello' });
  const running = await client.submit('r'.repeat(40)); // ~3 s of chunks at 150 ms
  const queued = await client.submit('queued behind it');
  await waitFor(
    () => client?.accepted.find((e) => e.name === 'task:assigned' && e.payload.taskId === running),
    { what: 'first task running' },
  );
  const firstEpoch = client.epoch;

  await first.close();
  masters.splice(masters.indexOf(first), 1);
  const second = await start();

  const done = await client.waitTerminal(running, 30_000);
  const next = await client.waitTerminal(queued, 30_000);
  expect(client.epoch).not.toBe(firstEpoch);
  expect(done.payload).toMatchObject({
    state: 'completed',
    result: `echo: ${'r'.repeat(40)}`,
    workerId: 'w-1',
  });
  expect(next.payload).toMatchObject({ state: 'completed', result: 'echo: queued behind it' });
  const view = (await api<TaskView>(second, `/api/tasks/${running}`)).body;
  // Adopted, not retried: the attempt the worker ran before the restart is the one that counted.
  expect(view.attempt).toBe(1);
  expect(client.terminal(running)).toHaveLength(1);
  expect(client.terminal(queued)).toHaveLength(1);
});

it('after a restart, still times out a task queued for a model nobody serves', async () => {
  const env = { QUEUE_NAMESPACE: 'restart_unserved' };
  const first = await startTestMaster({ queueUrl: redis.url, mqttUrl: mosquitto.url, env });
  masters.push(first);
  const { body } = await api<{ id: string }>(first, '/api/tasks', {
    // A known model on a label no worker carries (an unknown model is refused at once).
    body: { prompt: 'for nobody', requires: { labels: { zone: 'nowhere' } }, timeoutMs: 2_000 },
  });
  await first.close();
  masters.splice(masters.indexOf(first), 1);
  const second = await startTestMaster({ queueUrl: redis.url, mqttUrl: mosquitto.url, env });
  masters.push(second);
  const view = await waitFor(
    async () => {
      const task = (await api<TaskView>(second, `/api/tasks/${body.id}`)).body;
      return task.state === 'queued' ? undefined : task;
    },
    { timeoutMs: 15_000, what: 'the unserved task to time out' },
  );
  expect(view).toMatchObject({ state: 'failed' });
  expect(view.error).toMatch(/timed out after 2 s in the queue/);
});
