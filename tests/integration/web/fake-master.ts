import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Server } from 'socket.io';
import { vendorRoutes } from '../../../master/src/http/web-assets.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import {
  type ClientToServerEvents,
  type FleetSummary,
  type HelloReply,
  helloSchema,
  sessionAckSchema,
  sessionRoom,
  socketSubmitSchema,
  TASK_EVENTS_BATCH,
  type TaskEventName,
  type TaskEventPayloads,
  taskCancelSchema,
  taskReprioritizeSchema,
} from '../../../proto/src/socket-events.ts';
import { tokenGate } from './fake-auth.ts';
import { channel, resyncEvent, taskView } from './fake-parts.ts';
import type {
  CancelRequest,
  HelloRecord,
  Outbox,
  OutboxEvent,
  ReprioritizeRequest,
  Submission,
  SubmitRecord,
} from './fake-types.ts';

export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

/** Prompts starting with this are refused in the ack, as the master does for an invalid task. */
export const REJECT_PREFIX = 'reject:';
export const REJECT_ERROR = 'No online worker serves model "nope"';
export { taskView, UNKNOWN_TASK_ERROR, worker } from './fake-parts.ts';
export type * from './fake-types.ts';

/**
 * The master's browser-facing surface only: static web/, `GET /api/tasks/:id`
 * and the Socket.IO contract with a per-session outbox (epoch, outboxSeq,
 * replay on resume, resync of `pending` from the task views set by the test,
 * skipping tasks the store does not have, as the master does), with the task
 * pipeline scripted by the test through `nextSubmit()` and `Submission.emit`.
 * Like the master, it emits `task:queued` (with the client's id) before the
 * ack, and keeps `task:submit` idempotent per (session, clientId). Cancels and
 * priority changes are answered by the test; API tokens, once required, are
 * checked by the master's own code.
 */
export async function startFakeMaster(options: { workers: WorkerView[]; models: string[] }) {
  let workers = options.workers;
  let models = options.models;
  let taskCounter = 0;
  let epochCounter = 0;
  const newEpoch = () => `epoch-${++epochCounter}-${Math.random().toString(36).slice(2, 8)}`;
  let epoch = newEpoch();
  let dropNext: SubmitRecord['dropped'];
  let eventsBeforeHelloAck = false;
  const submissions = channel<Submission>();
  const hellos = channel<HelloRecord>();
  const cancels = channel<CancelRequest>();
  const reprioritizes = channel<ReprioritizeRequest>();
  const gate = tokenGate();
  const submitLog: SubmitRecord[] = [];
  const waitingFor = 'waiting for a free GPU worker';
  /** The task store: what a resync reports. Changes only when the test says so. */
  const tasks = new Map<string, TaskView>();
  const byClientId = new Map<string, string>();
  const outboxes = new Map<string, Outbox>();

  const app = express();
  app.use('/api', gate.rest);
  app.get('/api/tasks/:id', (req, res) => {
    const task = tasks.get(req.params.id);
    if (task) res.json(task);
    else res.status(404).json({ error: `no task ${req.params.id}`, code: 'not_found' });
  });
  app.use('/vendor', vendorRoutes());
  app.use(express.static(WEB_DIR));
  const http = createServer(app);
  // Task events are typed by TaskEventPayloads in record(); the stamp is added there.
  const io = new Server<ClientToServerEvents, Record<string, (event: unknown) => void>>(http);
  io.use(gate.socket);

  const outbox = (sessionId: string): Outbox => {
    let box = outboxes.get(sessionId);
    if (!box) {
      box = { log: [], next: 1, acked: 0 };
      outboxes.set(sessionId, box);
    }
    return box;
  };
  const stamped = (event: OutboxEvent) => ({ ...event.payload, outboxSeq: event.seq });
  /** One recorded event as the master sends it: a `task:events` batch of one. */
  const batchOf = (event: OutboxEvent) =>
    [TASK_EVENTS_BATCH, { events: [{ name: event.name, payload: stamped(event) }] }] as const;

  function record<E extends TaskEventName>(
    sessionId: string,
    name: E,
    payload: TaskEventPayloads[E],
  ) {
    const box = outbox(sessionId);
    const event: OutboxEvent = { seq: box.next, name, payload };
    box.next += 1;
    box.log.push(event);
    io.to(sessionRoom(sessionId)).emit(...batchOf(event));
    return event;
  }

  io.on('connection', (socket) => {
    let sessionId: string | undefined;
    socket.on('session:hello', (raw, ack) => {
      const parsed = helloSchema.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: 'invalid session hello' });
      const hello = parsed.data;
      const sid = hello.sessionId;
      sessionId = sid;
      void socket.join(sessionRoom(sid));
      const box = outbox(sid);
      const { resume, pending = [] } = hello;
      const canReplay = resume && resume.epoch === epoch && resume.lastSeq >= box.acked;
      const resumed = canReplay ? 'replay' : resume || pending.length ? 'resync' : 'fresh';
      const reply: HelloReply = {
        sessionId: sid,
        epoch,
        resumed,
        workers,
        models,
        fleet: fleetOf(workers),
      };
      // The master may flush the outbox before or after answering: the client must cope with both.
      if (!eventsBeforeHelloAck) ack({ ok: true, ...reply });
      const replayed: number[] = [];
      const resynced: OutboxEvent[] = [];
      if (canReplay) {
        for (const event of box.log.filter((e) => e.seq > resume.lastSeq)) {
          socket.emit(...batchOf(event));
          replayed.push(event.seq);
        }
      } else if (resumed === 'resync') {
        for (const taskId of pending) {
          const view = tasks.get(taskId);
          // Like the master: nothing for a task the store does not have (the page asks REST).
          if (!view) continue;
          const [name, payload] = resyncEvent(taskId, view);
          resynced.push(record(sid, name, payload));
        }
      }
      if (eventsBeforeHelloAck) ack({ ok: true, ...reply });
      hellos.push({ hello, reply, replayed, resynced });
    });

    socket.on('session:ack', (raw) => {
      const parsed = sessionAckSchema.safeParse(raw);
      if (!sessionId || !parsed.success) return;
      const box = outbox(sessionId);
      box.acked = Math.max(box.acked, Math.min(parsed.data.seq, box.next - 1));
    });

    socket.on('task:submit', (raw, ack) => {
      const parsed = socketSubmitSchema.safeParse(raw);
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      if (!parsed.success) return ack({ ok: false, error: parsed.error.issues[0]?.message ?? '' });
      if (parsed.data.prompt.startsWith(REJECT_PREFIX))
        return ack({ ok: false, error: REJECT_ERROR });
      const sid = sessionId;
      const { clientId } = parsed.data;
      const dropped = dropNext;
      dropNext = undefined;
      if (dropped === 'submit') return void submitLog.push({ clientId, dropped });
      const key = clientId ? `${sid}\n${clientId}` : undefined;
      let taskId = key ? byClientId.get(key) : undefined;
      if (!taskId) {
        taskCounter += 1;
        const newId = `task-${taskCounter}-${Math.random().toString(36).slice(2, 8)}`;
        taskId = newId;
        if (key) byClientId.set(key, newId);
        const { model = 'echo', priority = 0 } = parsed.data;
        const timings = { submittedAt: Date.now() };
        tasks.set(
          newId,
          taskView(newId, { state: 'queued', model, priority, attempt: 0, timings }),
        );
        record(sid, 'task:queued', { taskId: newId, clientId, waitingFor });
        submissions.push({
          taskId: newId,
          sessionId: sid,
          payload: parsed.data,
          emit: (event, payload) => record(sid, event, payload).seq,
        });
      }
      submitLog.push({ clientId, taskId, dropped });
      if (dropped === 'ack') socket.disconnect(true);
      else ack({ ok: true, taskId });
    });

    socket.on('task:cancel', (raw, ack) => {
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      const parsed = taskCancelSchema.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: 'invalid task id' });
      cancels.push({ taskId: parsed.data.taskId, sessionId, reply: ack });
    });

    socket.on('task:reprioritize', (raw, ack) => {
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      const parsed = taskReprioritizeSchema.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: 'invalid task id or priority' });
      reprioritizes.push({ ...parsed.data, sessionId, reply: ack });
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
    nextCancel: cancels.next,
    nextReprioritize: reprioritizes.next,
    /** `auth.token` of every Socket.IO handshake so far (undefined: none sent). */
    handshakeTokens: gate.handshakes,
    /** The Authorization header of every /api request so far. */
    apiAuthorizations: gate.authorizations,
    /** Requires this API token from now on (undefined: none), as API_TOKENS does. */
    requireToken: gate.require,
    /** Every `task:submit` accepted so far, retries included. */
    submitLog,
    get epoch() {
      return epoch;
    },
    /** Whether replayed or resynced events go out before the hello ack (default: after). */
    setEventsBeforeHelloAck(before: boolean) {
      eventsBeforeHelloAck = before;
    },
    /** The next submission is accepted but its ack is withheld and its socket closed. */
    dropNextSubmitAck() {
      dropNext = 'ack';
    },
    /** The next submission is ignored as if lost on the way: no task, no ack. */
    loseNextSubmit() {
      dropNext = 'submit';
    },
    /** The last outboxSeq the session's client acked. */
    ackedSeq: (sessionId: string) => outbox(sessionId).acked,
    /** Leaves `count` numbers unused in the session's outbox (gaps are allowed). */
    skipSeq(sessionId: string, count: number) {
      outbox(sessionId).next += count;
    },
    /** Sends recorded events (all, or those `which` picks) again, with the same outboxSeq. */
    replayDuplicates(sessionId: string, which: (event: OutboxEvent) => boolean = () => true) {
      for (const event of outbox(sessionId).log.filter(which)) {
        io.to(sessionRoom(sessionId)).emit(...batchOf(event));
      }
    },
    /** What a resync and `GET /api/tasks/:id` report for the task from now on (no event is emitted). */
    setTask(view: TaskView) {
      tasks.set(view.id, view);
    },
    /** The task store forgets the task, as when it expired: REST answers 404, a resync skips it. */
    forgetTask(taskId: string) {
      tasks.delete(taskId);
    },
    /** Closes every browser socket from the server side; clients reconnect and say hello again. */
    dropConnections() {
      io.disconnectSockets(true);
    },
    /** A master restart: a new epoch, every outbox lost, every socket closed. */
    restart() {
      epoch = newEpoch();
      outboxes.clear();
      io.disconnectSockets(true);
    },
    /** A panel update; `fleet` stands for a fleet larger than the workers listed. */
    setWorkers(next: WorkerView[], nextModels: string[], fleet = fleetOf(next)) {
      workers = next;
      models = nextModels;
      io.emit('workers:update', { workers, models, fleet });
    },
    async close() {
      await io.close();
    },
  };
}

export type FakeMaster = Awaited<ReturnType<typeof startFakeMaster>>;

/** The fleet summary a master sends with the panel, counted from `workers`. */
function fleetOf(workers: WorkerView[]): FleetSummary {
  const fleet: FleetSummary = { online: 0, offline: 0, slots: 0, active: 0, models: {} };
  for (const w of workers) {
    if (w.state !== 'online') {
      fleet.offline += 1;
      continue;
    }
    fleet.online += 1;
    fleet.slots += w.slots;
    fleet.active += w.active;
    for (const model of w.models) {
      const served = fleet.models[model] ?? { cpu: 0, gpu: 0, local: false, loaded: 0 };
      fleet.models[model] = served;
      served[w.kind] += 1;
    }
  }
  return fleet;
}
