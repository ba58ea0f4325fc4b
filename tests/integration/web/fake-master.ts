import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Server } from 'socket.io';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import {
  type ClientToServerEvents,
  helloSchema,
  type ServerToClientEvents,
  type SocketSubmit,
  sessionRoom,
  socketSubmitSchema,
} from '../../../proto/src/socket-events.ts';

export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

/** Prompts starting with this are refused in the ack, as the master does for an invalid task. */
export const REJECT_PREFIX = 'reject:';
export const REJECT_ERROR = 'No online worker serves model "nope"';

export interface Submission {
  taskId: string;
  sessionId: string;
  payload: SocketSubmit;
  /** Emits a server event to the submitting session's room. */
  emit<E extends keyof ServerToClientEvents>(
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void;
}

type Waiter<T> = (value: T) => void;

/** Hands out items in arrival order to whoever awaits them. */
function channel<T>() {
  const items: T[] = [];
  const waiters: Waiter<T>[] = [];
  return {
    push(item: T) {
      const waiter = waiters.shift();
      if (waiter) waiter(item);
      else items.push(item);
    },
    next(): Promise<T> {
      const item = items.shift();
      if (item !== undefined) return Promise.resolve(item);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/**
 * The master's browser-facing surface only: static web/, the Socket.IO
 * contract and `GET /api/tasks/:id`, with the task pipeline scripted by the
 * test through `nextSubmit()` and `setTask()`. Like the master, it emits
 * `task:queued` (with the client's id) before the ack. The REST view of a task
 * changes only when the test says so; emitting an event does not touch it.
 */
export async function startFakeMaster(options: { workers: WorkerView[]; models: string[] }) {
  let workers = options.workers;
  let models = options.models;
  let taskCounter = 0;
  const submissions = channel<Submission>();
  const hellos = channel<string>();
  const waitingFor = 'waiting for a free GPU worker';
  const tasks = new Map<string, TaskView>();

  const app = express();
  app.get('/api/tasks/:id', (req, res) => {
    const task = tasks.get(req.params.id);
    if (task) res.json(task);
    else res.status(404).json({ error: `no task ${req.params.id}`, code: 'not_found' });
  });
  app.use(express.static(WEB_DIR));
  const http = createServer(app);
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(http);

  io.on('connection', (socket) => {
    let sessionId: string | undefined;
    socket.on('session:hello', (raw, ack) => {
      const parsed = helloSchema.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: 'invalid session id' });
      sessionId = parsed.data.sessionId;
      void socket.join(sessionRoom(sessionId));
      ack({ ok: true, sessionId, workers, models });
      hellos.push(sessionId);
    });
    socket.on('task:submit', (raw, ack) => {
      const parsed = socketSubmitSchema.safeParse(raw);
      if (!sessionId) return ack({ ok: false, error: 'say session:hello first' });
      if (!parsed.success) return ack({ ok: false, error: parsed.error.issues[0]?.message ?? '' });
      if (parsed.data.prompt.startsWith(REJECT_PREFIX))
        return ack({ ok: false, error: REJECT_ERROR });
      taskCounter += 1;
      const taskId = `task-${taskCounter}-${Math.random().toString(36).slice(2, 8)}`;
      const room = sessionRoom(sessionId);
      tasks.set(
        taskId,
        taskView(taskId, {
          state: 'queued',
          model: parsed.data.model ?? 'echo',
          attempt: 0,
          timings: { submittedAt: Date.now() },
        }),
      );
      io.to(room).emit('task:queued', { taskId, clientId: parsed.data.clientId, waitingFor });
      ack({ ok: true, taskId });
      submissions.push({
        taskId,
        sessionId,
        payload: parsed.data,
        emit: (event, ...args) => io.to(room).emit(event, ...args),
      });
    });
  });

  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const { port } = http.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/`,
    waitingFor,
    nextSubmit: submissions.next,
    nextHello: hellos.next,
    /** What `GET /api/tasks/:id` answers from now on (no event is emitted). */
    setTask(view: TaskView) {
      tasks.set(view.id, view);
    },
    /** `GET /api/tasks/:id` answers 404 from now on, as for an expired task. */
    forgetTask(taskId: string) {
      tasks.delete(taskId);
    },
    /** Closes every browser socket from the server side; clients reconnect and say hello again. */
    dropConnections() {
      io.disconnectSockets(true);
    },
    setWorkers(next: WorkerView[], nextModels: string[]) {
      workers = next;
      models = nextModels;
      io.emit('workers:update', { workers, models });
    },
    async close() {
      await io.close();
    },
  };
}

export type FakeMaster = Awaited<ReturnType<typeof startFakeMaster>>;

export function worker(overrides: Partial<WorkerView> & Pick<WorkerView, 'id'>): WorkerView {
  return {
    kind: 'cpu',
    state: 'online',
    models: ['echo'],
    providers: ['echo'],
    labels: {},
    slots: 2,
    active: 0,
    host: 'node-a',
    version: '0.1.0',
    lastSeen: Date.now(),
    cpuPct: 12,
    memPct: 41,
    gpus: [],
    ...overrides,
  };
}

export function taskView(
  taskId: string,
  overrides: Partial<TaskView> & Pick<TaskView, 'state'>,
): TaskView {
  const submittedAt = 1_700_000_000_000;
  return {
    id: taskId,
    model: 'echo',
    priority: 0,
    requires: {},
    attempt: 1,
    timings: { submittedAt, queueMs: 12, processingMs: 1500, totalMs: 1534 },
    ...overrides,
  };
}
