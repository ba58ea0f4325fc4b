/**
 * Socket.IO for the chat UI. A socket joins its session's room on
 * `session:hello`; task events go through the session's outbox (a sequence
 * number each) to the room, so every tab of a session sees them, and a tab
 * that reconnects is sent what it missed: a replay from the outbox, or, when
 * that is impossible (master restart), the state of its pending tasks read
 * from the store.
 */
import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  CLIENT_EVENT_NAMES,
  type ClientToServerEvents,
  type Hello,
  helloSchema,
  MAX_PANEL_WORKERS,
  type ServerToClientEvents,
  type StampedTaskEvent,
  sessionAckSchema,
  sessionRoom,
  socketSubmitSchema,
  TASK_EVENTS_BATCH,
  type TaskEventName,
  type TaskEventPayloads,
  TERMINAL_TASK_EVENTS,
  taskCancelSchema,
  taskReprioritizeSchema,
} from '../../../proto/src/socket-events.ts';
import { type ApiAuth, type SocketRefusal, scopeSession, socketTokenCheck } from '../http/auth.ts';
import { RateLimitedError } from '../http/errors.ts';
import { createOriginPolicy, normalizeOrigin, socketOriginCheck } from '../http/origins.ts';
import { type RateLimiter, rateKeyOf } from '../http/rate-limit.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import { SOCKET_EVENT_OF, type TaskEventMap, type TaskEvents } from '../tasks/task-events.ts';
import type { TaskService } from '../tasks/task-service.ts';
import type { OutboxEntry, Outboxes } from './outbox.ts';

/** The worker panel is redrawn at most this often. */
export const WORKERS_UPDATE_MS = 500;
/**
 * Largest Socket.IO message. Above the prompt limits on purpose, so an
 * oversized prompt is answered with a readable validation error instead of a
 * dropped connection.
 */
export const MAX_SOCKET_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface SocketServerDeps {
  httpServer: HttpServer;
  tasks: TaskService;
  events: TaskEvents;
  outboxes: Outboxes;
  registry: WorkerRegistry;
  /** API tokens: with any configured, a connection must send `auth: { token }`. */
  auth: ApiAuth;
  /** The REST API's limiter: submissions, cancels and re-prioritisations count against it. */
  limiter: RateLimiter;
  /** Browser origins besides the master's own that may connect (CORS_ORIGINS). */
  corsOrigins: readonly string[];
  /** Hears of every connection refused for its token (the audit trail). */
  onRefused?: (refusal: SocketRefusal) => void;
  log: Logger;
}

interface SocketData {
  /** The token's tenant, set by the io.use check before any event. */
  tenant: string;
  /** The session's id inside the master: scoped to the tenant (scopeSession). */
  sessionId?: string;
  /** Highest outbox seq this socket has acked. */
  acked: number;
}

type FlotaSocket = Socket<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  SocketData
>;

const safeAck = <T>(ack: unknown): ((reply: T) => void) =>
  typeof ack === 'function' ? (ack as (reply: T) => void) : () => undefined;

/** The ack of a refused request: a readable text, and the code (and wait) when the master knows them. */
const refusal = (
  err: unknown,
): { ok: false; error: string; code?: string; retryAfterS?: number } =>
  err instanceof RateLimitedError
    ? { ok: false, error: err.message, code: err.code, retryAfterS: err.retryAfterS }
    : err instanceof FlotaError
      ? { ok: false, error: err.message, code: err.code }
      : { ok: false, error: 'internal error' };

export function attachSocketServer(deps: SocketServerDeps): {
  /** The server, for other namespaces (the console's): its origin check covers them all. */
  io: Server;
  close(): Promise<void>;
} {
  const log = deps.log.child({ component: 'realtime' });
  const { outboxes, tasks } = deps;
  const originPolicy = createOriginPolicy({
    corsOrigins: deps.corsOrigins,
    loopbackOnly: !deps.auth.enabled,
    log,
  });
  const io = new Server<
    ClientToServerEvents,
    ServerToClientEvents,
    Record<string, never>,
    SocketData
  >(deps.httpServer, {
    maxHttpBufferSize: MAX_SOCKET_MESSAGE_BYTES,
    serveClient: true,
    // A foreign page is refused before the handshake; listed ones get CORS headers for polling.
    allowRequest: socketOriginCheck(originPolicy, log),
    cors: {
      origin: (origin, callback) =>
        callback(
          null,
          origin !== undefined && originPolicy.listed.has(normalizeOrigin(origin) ?? ''),
        ),
    },
  });
  io.use(socketTokenCheck(deps.auth, log, deps.onRefused));

  /** Counts one request of this socket's tenant (or address); throws RateLimitedError over the limit. */
  const spend = async (socket: FlotaSocket) => {
    const key = rateKeyOf(deps.auth.enabled, socket.handshake.address, socket.data.tenant);
    const verdict = await deps.limiter.consume(key);
    if (!verdict.allowed) throw new RateLimitedError(verdict.retryAfterS, verdict.limit);
  };

  const stamped = (entry: OutboxEntry): StampedTaskEvent =>
    ({ name: entry.name, payload: { ...entry.payload, outboxSeq: entry.seq } }) as StampedTaskEvent;
  /** Sends entries to one socket (replays, resync answers) as one message. */
  const send = (target: FlotaSocket, entries: OutboxEntry[]) => {
    if (entries.length > 0) target.emit(TASK_EVENTS_BATCH, { events: entries.map(stamped) });
  };

  /**
   * Live events wait for the end of the event loop's turn and go to their
   * session's room as one `task:events` message: every event the turn made
   * for that session, in outbox order, less the chunks a terminal event of
   * the same turn superseded.
   */
  const turn = new Map<string, OutboxEntry[]>();
  let flushing: NodeJS.Immediate | undefined;
  const toSession = (sessionId: string, entries: OutboxEntry[]) => {
    const events = entries.filter((e) => !e.dead).map(stamped);
    if (events.length > 0) io.to(sessionRoom(sessionId)).emit(TASK_EVENTS_BATCH, { events });
  };
  const flush = () => {
    flushing = undefined;
    for (const [sessionId, entries] of turn) toSession(sessionId, entries);
    turn.clear();
  };
  /**
   * Sends one socket an event with a fresh number (a resync answer). The
   * session's events still waiting for the turn's end go first: they have
   * lower numbers, and a client drops anything below what it has seen.
   */
  const sendFresh = (socket: FlotaSocket, sessionId: string, entry: Omit<OutboxEntry, 'seq'>) => {
    flushSession(sessionId);
    send(socket, [{ ...entry, seq: outboxes.stamp(sessionId) } as OutboxEntry]);
  };
  /** Sends the session's events waiting for the turn's end now. */
  function flushSession(sessionId: string) {
    const waiting = turn.get(sessionId);
    if (!waiting) return;
    turn.delete(sessionId);
    toSession(sessionId, waiting);
  }
  const toRoom = (sessionId: string, entry: OutboxEntry) => {
    const entries = turn.get(sessionId);
    if (entries) entries.push(entry);
    else turn.set(sessionId, [entry]);
    flushing ??= setImmediate(flush);
  };

  /**
   * Sends the state of tasks the client still waits for. A task found finished
   * is recorded as its terminal event and sent to the whole session (every tab
   * learns it, once); if the session already had that event, only this socket
   * gets it again, unless it came to this socket live after it joined.
   */
  const resync = async (socket: FlotaSocket, sessionId: string, ids: string[], joinSeq: number) => {
    for (const taskId of ids) {
      const view = await tasks.getForSession(taskId, sessionId).catch(() => undefined);
      if (!view || !socket.connected) continue;
      if (['completed', 'failed', 'cancelled'].includes(view.state)) {
        const name = view.state === 'completed' ? 'task:completed' : 'task:failed';
        const entry = outboxes.append(sessionId, name, view);
        if (entry) {
          toRoom(sessionId, entry);
          continue;
        }
        const liveSeq = outboxes.terminalSeq(sessionId, taskId);
        if (liveSeq !== undefined && liveSeq >= joinSeq) continue; // it came through the room
        sendFresh(socket, sessionId, { name, taskId, payload: view });
        continue;
      }
      let name: TaskEventName;
      let payload: TaskEventPayloads[TaskEventName];
      if (view.state === 'running' && view.workerId && view.workerKind) {
        name = 'task:assigned';
        payload = {
          taskId,
          attempt: view.attempt,
          workerId: view.workerId,
          workerKind: view.workerKind,
        };
      } else {
        name = 'task:queued';
        payload = { taskId };
      }
      sendFresh(socket, sessionId, { name, taskId, payload });
    }
  };

  const onHello = (socket: FlotaSocket, hello: Hello) => {
    const { sessionId, resume, pending = [] } = hello;
    if (socket.data.sessionId && socket.data.sessionId !== sessionId) {
      void socket.leave(sessionRoom(socket.data.sessionId));
    }
    socket.data.sessionId = sessionId;
    socket.data.acked = resume?.epoch === outboxes.epoch ? resume.lastSeq : 0;
    outboxes.touch(sessionId);
    const replayed = resume ? outboxes.replay(sessionId, resume.epoch, resume.lastSeq) : undefined;
    const resumed = !resume ? 'fresh' : replayed ? 'replay' : 'resync';
    return { replayed, resumed, pending } as const;
  };

  io.on('connection', (socket) => {
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if ((CLIENT_EVENT_NAMES as readonly unknown[]).includes(event)) return;
      const name = String(event).slice(0, 64);
      log.warn({ event: name }, 'socket event dropped: unknown name');
      const ack = args.at(-1);
      if (typeof ack === 'function')
        ack({ ok: false, error: `unknown event ${JSON.stringify(name)}` });
    });
    socket.data.acked = 0;

    socket.on('session:hello', (payload, ackFn) => {
      const ack = safeAck(ackFn);
      const parsed = helloSchema.safeParse(payload);
      if (!parsed.success) return ack({ ok: false, error: formatZodError(parsed.error) });
      const sessionId = scopeSession(socket.data.tenant, parsed.data.sessionId);
      const { replayed, resumed, pending } = onHello(socket, { ...parsed.data, sessionId });
      ack({
        ok: true,
        sessionId: parsed.data.sessionId,
        epoch: outboxes.epoch,
        resumed,
        ...deps.registry.panel(MAX_PANEL_WORKERS),
      });
      // Synchronous from the ack to the join: no live event can slip in between or be missed.
      // Events still waiting for the turn's end go to the room first, without this socket:
      // they are in its replay (or resync), and must not reach it twice or after it.
      void socket.leave(sessionRoom(sessionId));
      flushSession(sessionId);
      const joinSeq = outboxes.peekSeq();
      void socket.join(sessionRoom(sessionId));
      send(socket, replayed ?? []);
      const done = new Set(
        (replayed ?? []).filter((e) => TERMINAL_TASK_EVENTS.includes(e.name)).map((e) => e.taskId),
      );
      const ask = pending.filter((id) => !done.has(id));
      if (ask.length > 0) {
        resync(socket, sessionId, ask, joinSeq).catch((err) =>
          log.warn({ err, sessionId }, 'resync failed'),
        );
      }
    });

    socket.on('session:ack', (payload) => {
      const parsed = sessionAckSchema.safeParse(payload);
      const sessionId = socket.data.sessionId;
      if (!parsed.success || !sessionId) {
        log.debug({ sessionId }, 'session:ack dropped: bad shape or no hello');
        return;
      }
      socket.data.acked = Math.max(socket.data.acked, parsed.data.seq);
      // Trim what every connected tab of the session has processed.
      let floor = Number.POSITIVE_INFINITY;
      for (const id of io.sockets.adapter.rooms.get(sessionRoom(sessionId)) ?? []) {
        floor = Math.min(floor, io.sockets.sockets.get(id)?.data.acked ?? 0);
      }
      if (Number.isFinite(floor)) outboxes.trim(sessionId, floor);
    });

    socket.on('task:submit', async (payload, ackFn) => {
      const ack = safeAck(ackFn);
      const sessionId = socket.data.sessionId;
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      const parsed = socketSubmitSchema.safeParse(payload);
      if (!parsed.success) return ack({ ok: false, error: formatZodError(parsed.error) });
      const { clientId, ...input } = parsed.data;
      try {
        await spend(socket);
        const { taskId } = await tasks.submit(input, {
          sessionId,
          clientId,
          tenant: socket.data.tenant,
        });
        ack({ ok: true, taskId });
      } catch (err) {
        if (!(err instanceof FlotaError)) log.error({ err }, 'submit failed');
        ack(refusal(err));
      }
    });

    socket.on('task:cancel', async (payload, ackFn) => {
      const ack = safeAck(ackFn);
      const sessionId = socket.data.sessionId;
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      const parsed = taskCancelSchema.safeParse(payload);
      if (!parsed.success) return ack({ ok: false, error: formatZodError(parsed.error) });
      try {
        await spend(socket);
        const view = await tasks.cancel(parsed.data.taskId, { sessionId });
        ack({ ok: true, state: view.state });
      } catch (err) {
        if (!(err instanceof FlotaError)) log.error({ err }, 'cancel failed');
        ack(refusal(err));
      }
    });

    socket.on('task:reprioritize', async (payload, ackFn) => {
      const ack = safeAck(ackFn);
      const sessionId = socket.data.sessionId;
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      const parsed = taskReprioritizeSchema.safeParse(payload);
      if (!parsed.success) return ack({ ok: false, error: formatZodError(parsed.error) });
      const { taskId, priority } = parsed.data;
      try {
        await spend(socket);
        const view = await tasks.reprioritize(taskId, priority, { sessionId });
        ack({ ok: true, state: view.state, priority: view.priority });
      } catch (err) {
        if (!(err instanceof FlotaError)) log.error({ err }, 'reprioritize failed');
        ack(refusal(err));
      }
    });
  });

  const { events } = deps;
  const relay = <K extends keyof TaskEventMap>(kind: K) => {
    const name = SOCKET_EVENT_OF[kind];
    return (sessionId: string | undefined, payload: TaskEventMap[K][1]) => {
      if (!sessionId) return;
      const entry = outboxes.append(sessionId, name, payload as TaskEventPayloads[typeof name]);
      if (entry) toRoom(sessionId, entry);
    };
  };
  const kinds = Object.keys(SOCKET_EVENT_OF) as Array<keyof TaskEventMap>;
  const listeners = kinds.map((kind) => [kind, relay(kind)] as const);
  for (const [kind, listener] of listeners) events.on(kind, listener as never);

  let pending: NodeJS.Timeout | undefined;
  const onWorkersChange = () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      io.emit('workers:update', deps.registry.panel(MAX_PANEL_WORKERS));
    }, WORKERS_UPDATE_MS);
  };
  deps.registry.on('change', onWorkersChange);

  return {
    io: io as unknown as Server,
    async close() {
      deps.registry.off('change', onWorkersChange);
      if (pending) clearTimeout(pending);
      if (flushing) clearImmediate(flushing);
      flush();
      for (const [kind, listener] of listeners) events.off(kind, listener as never);
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
