/**
 * The dispatch suite, run against each broker (embedded aedes, Mosquitto):
 * a real master on a real Redis store, real workers, REST and Socket.IO clients.
 */
import mqtt from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type {
  ClientToServerEvents,
  ServerToClientEvents,
  TaskChunkEvent,
} from '../../../proto/src/socket-events.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { nextTaskEvent, onTaskEvent } from '../../helpers/task-events.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

export interface BrokerUnderTest {
  /** undefined → the master runs its embedded broker. */
  mqttUrl?: string;
  stop(): Promise<void>;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

async function waitForTask(master: MasterHandle, id: string): Promise<TaskView> {
  return waitFor(
    async () => {
      const { body } = await api<TaskView>(master, `/api/tasks/${id}`);
      return TERMINAL.has(body.state) ? body : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 25, what: `task ${id} to finish` },
  );
}

export function describeDispatchContract(
  label: string,
  openBroker: () => Promise<BrokerUnderTest>,
) {
  describe(`dispatch on ${label}`, () => {
    let redis: RedisServer;
    let broker: BrokerUnderTest;
    let master: MasterHandle;
    const workers: WorkerHandle[] = [];

    beforeAll(async () => {
      [redis, broker] = await Promise.all([startRedis(), openBroker()]);
      master = await startTestMaster({ queueUrl: redis.url, mqttUrl: broker.mqttUrl });
      for (const id of ['cpu-a', 'cpu-b']) {
        workers.push(
          await startTestWorker(master, {
            WORKER_ID: id,
            SLOTS: '2',
            ECHO_DELAY_MS: '2',
            ECHO_CHUNK_SIZE: '4',
          }),
        );
      }
      await waitFor(
        async () =>
          (await api<{ workers: WorkerView[] }>(master, '/api/workers')).body.workers.length === 2,
        { what: 'two workers registered' },
      );
    });

    afterAll(async () => {
      await Promise.all(workers.map((w) => w.close()));
      await master?.close();
      await Promise.all([redis?.stop(), broker?.stop()]);
    });

    it('runs tasks submitted over REST on both workers', async () => {
      const ids = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const { status, body } = await api<{ id: string }>(master, '/api/tasks', {
            body: { prompt: `hello ${i}` },
          });
          expect(status).toBe(202);
          return body.id;
        }),
      );
      const tasks = await Promise.all(ids.map((id) => waitForTask(master, id)));
      tasks.forEach((task, i) => {
        expect(task).toMatchObject({
          state: 'completed',
          result: `echo: hello ${i}`,
          model: 'echo',
          workerKind: 'cpu',
        });
        expect(task.timings.queueMs).toBeGreaterThanOrEqual(0);
        expect(task.timings.processingMs).toBeGreaterThanOrEqual(0);
      });
      expect(new Set(tasks.map((t) => t.workerId))).toEqual(new Set(['cpu-a', 'cpu-b']));
    });

    it('streams a task to its Socket.IO session: queued, assigned, chunks in order, completed', async () => {
      const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(master.httpUrl, {
        transports: ['websocket'],
      });
      try {
        const hello = await socket.emitWithAck('session:hello', { sessionId: 'session-stream-1' });
        expect(hello).toMatchObject({ ok: true, models: ['echo'] });
        const chunks: TaskChunkEvent[] = [];
        onTaskEvent(socket, 'task:chunk', (c) => chunks.push(c));
        const done = nextTaskEvent(socket, 'task:completed');
        const assigned = nextTaskEvent(socket, 'task:assigned');
        const ack = await socket.emitWithAck('task:submit', {
          prompt: 'stream me please',
          clientId: 'c1',
        });
        expect(ack.ok).toBe(true);
        const task = await done;
        expect(await assigned).toMatchObject({ taskId: task.id, attempt: 1 });
        expect(task.result).toBe('echo: stream me please');
        expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i));
        expect(chunks.map((c) => c.text).join('')).toBe(task.result);
        const bad = await socket.emitWithAck('task:submit', { prompt: 42 });
        expect(bad).toMatchObject({ ok: false, error: expect.stringContaining('prompt') });
      } finally {
        socket.close();
      }
    });

    it('keeps a GPU task waiting (and says why) until a GPU worker joins', async () => {
      const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(master.httpUrl, {
        transports: ['websocket'],
      });
      let gpu: WorkerHandle | undefined;
      try {
        await socket.emitWithAck('session:hello', { sessionId: 'session-gpu-1' });
        const queued = nextTaskEvent(socket, 'task:queued');
        const ack = await socket.emitWithAck('task:submit', {
          prompt: 'needs a gpu',
          requires: { gpu: true },
        });
        if (!ack.ok) throw new Error(ack.error);
        expect((await queued).waitingFor).toMatch(/no online worker serves echo on a GPU/);
        const { body } = await api<TaskView>(master, `/api/tasks/${ack.taskId}`);
        expect(body.state).toBe('queued');
        gpu = await startTestWorker(master, { WORKER_ID: 'gpu-a', WORKER_KIND: 'gpu', SLOTS: '1' });
        const task = await waitForTask(master, ack.taskId);
        expect(task).toMatchObject({ state: 'completed', workerId: 'gpu-a', workerKind: 'gpu' });
      } finally {
        socket.close();
        await gpu?.close();
      }
    });

    it('drops malformed MQTT messages from logged-in workers and keeps serving', async () => {
      const topics = createTopics();
      // Whoever has a worker credential may still send garbage on its own topics.
      const loginAs = async (id: string) => {
        const client = await mqtt.connectAsync(master.mqttUrl, {
          clientId: workerClientId(id),
          username: id,
          password: await master.issueWorkerCredential(id),
          reconnectPeriod: 0,
        });
        client.on('error', () => undefined);
        return client;
      };
      const intruder = await loginAs('intruder');
      try {
        await intruder.publishAsync(topics.status('intruder'), '{not json');
        await intruder.publishAsync(
          topics.status('intruder'),
          JSON.stringify({ state: 'offline', id: 'cpu-b' }),
        );
        await intruder.publishAsync(
          topics.heartbeat('intruder'),
          JSON.stringify({ id: 'intruder', cpuPct: 'high' }),
        );
      } finally {
        await intruder.endAsync();
      }
      // Over the embedded broker's packet bound (it cuts the connection); Mosquitto
      // passes it on and the master drops it unparsed.
      const big = await loginAs('big');
      await big
        .publishAsync(topics.status('big'), Buffer.alloc(2 * 1024 * 1024, 'x'))
        .catch(() => undefined);
      await big.endAsync().catch(() => undefined);
      const { body: list } = await api<{ workers: WorkerView[] }>(master, '/api/workers');
      expect(list.workers.filter((w) => w.state === 'online').map((w) => w.id)).toEqual([
        'cpu-a',
        'cpu-b',
      ]);
      const { body } = await api<{ id: string }>(master, '/api/tasks', {
        body: { prompt: 'still alive' },
      });
      expect(await waitForTask(master, body.id)).toMatchObject({
        state: 'completed',
        result: 'echo: still alive',
      });
    });

    it('exposes Prometheus metrics and a JSON summary', async () => {
      const res = await fetch(`${master.httpUrl}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/^flota_tasks_total\{outcome="completed"\} [1-9]\d*$/m);
      expect(text).toMatch(/^flota_workers\{state="online"\} 2$/m);
      expect(text).toMatch(
        /^flota_queue_jobs\{queue="tasks\.any\.echo",state="completed"\} [1-9]\d*$/m,
      );
      expect(text).toMatch(/^flota_worker_slots\{worker="cpu-a",kind="total"\} 2$/m);
      expect(text).toContain('flota_task_total_seconds_bucket');
      const { body } = await api<{
        tasks: { completed: number };
        workers: { online: number; slots: number };
      }>(master, '/api/metrics');
      expect(body.tasks.completed).toBeGreaterThan(0);
      expect(body.workers).toMatchObject({ online: 2, slots: 4 });
    });

    it('answers bad REST input with 400 and a reason, unknown tasks with 404', async () => {
      const missing = await api<{ error: string }>(master, '/api/tasks', {
        body: { model: 'echo' },
      });
      expect(missing.status).toBe(400);
      expect(missing.body.error).toMatch(/prompt/);
      const notJson = await api<{ error: string }>(master, '/api/tasks', { body: '{"prompt":' });
      expect(notJson).toEqual({
        status: 400,
        body: { error: 'request body is not valid JSON', code: 'bad_request' },
      });
      const huge = await api(master, '/api/tasks', { body: { prompt: 'x'.repeat(2_000_000) } });
      expect(huge.status).toBe(413);
      expect((await api(master, '/api/tasks/any.echo.nope')).status).toBe(404);
      const ready = await api<{ ready: boolean }>(master, '/readyz');
      expect(ready).toMatchObject({ status: 200, body: { ready: true } });
    });
  });
}
