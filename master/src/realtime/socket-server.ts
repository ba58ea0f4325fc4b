/**
 * Socket.IO for the chat UI: a socket joins its session's room on
 * `session:hello`; task events for that session are emitted to the room, so
 * every tab of a session sees them.
 */
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import type { Clock } from '../../../common/clock.ts';
import { FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  type ClientToServerEvents,
  helloSchema,
  type ServerToClientEvents,
  sessionRoom,
  socketSubmitSchema,
} from '../../../proto/src/socket-events.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import type { TaskService } from '../tasks/task-service.ts';

/** The worker panel is redrawn at most this often. */
export const WORKERS_UPDATE_MS = 500;

export interface SocketServerDeps {
  httpServer: HttpServer;
  tasks: TaskService;
  events: TaskEvents;
  registry: WorkerRegistry;
  clock: Clock;
  log: Logger;
}

interface SocketData {
  sessionId?: string;
}

const safeAck = <T>(ack: unknown): ((reply: T) => void) =>
  typeof ack === 'function' ? (ack as (reply: T) => void) : () => undefined;

export function attachSocketServer(deps: SocketServerDeps): { close(): Promise<void> } {
  const log = deps.log.child({ component: 'realtime' });
  const io = new Server<
    ClientToServerEvents,
    ServerToClientEvents,
    Record<string, never>,
    SocketData
  >(deps.httpServer, { maxHttpBufferSize: 1_000_000, serveClient: true });

  io.on('connection', (socket) => {
    socket.on('session:hello', (payload, ackFn) => {
      const ack = safeAck(ackFn);
      const parsed = helloSchema.safeParse(payload);
      if (!parsed.success) return ack({ ok: false, error: formatZodError(parsed.error) });
      const { sessionId } = parsed.data;
      if (socket.data.sessionId && socket.data.sessionId !== sessionId) {
        void socket.leave(sessionRoom(socket.data.sessionId));
      }
      socket.data.sessionId = sessionId;
      void socket.join(sessionRoom(sessionId));
      ack({ ok: true, sessionId, workers: deps.registry.views(), models: deps.registry.models() });
    });

    socket.on('task:submit', async (payload, ackFn) => {
      const ack = safeAck(ackFn);
      const sessionId = socket.data.sessionId;
      if (!sessionId) return ack({ ok: false, error: 'send session:hello first' });
      const parsed = socketSubmitSchema.safeParse(payload);
      if (!parsed.success) return ack({ ok: false, error: formatZodError(parsed.error) });
      const { clientId, ...input } = parsed.data;
      try {
        const { taskId } = await deps.tasks.submit(input, { sessionId, clientId });
        ack({ ok: true, taskId });
      } catch (err) {
        if (!(err instanceof FlotaError)) log.error({ err }, 'submit failed');
        ack({ ok: false, error: err instanceof FlotaError ? err.message : 'internal error' });
      }
    });
  });

  const to = (sessionId: string | undefined) =>
    sessionId ? io.to(sessionRoom(sessionId)) : undefined;
  const { events } = deps;
  const listeners = {
    queued: (s: string | undefined, e: Parameters<ServerToClientEvents['task:queued']>[0]) =>
      to(s)?.emit('task:queued', e),
    assigned: (s: string | undefined, e: Parameters<ServerToClientEvents['task:assigned']>[0]) =>
      to(s)?.emit('task:assigned', e),
    chunk: (s: string | undefined, e: Parameters<ServerToClientEvents['task:chunk']>[0]) =>
      to(s)?.emit('task:chunk', e),
    completed: (s: string | undefined, t: Parameters<ServerToClientEvents['task:completed']>[0]) =>
      to(s)?.emit('task:completed', t),
    failed: (s: string | undefined, t: Parameters<ServerToClientEvents['task:failed']>[0]) =>
      to(s)?.emit('task:failed', t),
  };
  events.on('queued', listeners.queued);
  events.on('assigned', listeners.assigned);
  events.on('chunk', listeners.chunk);
  events.on('completed', listeners.completed);
  events.on('failed', listeners.failed);

  let pending: NodeJS.Timeout | undefined;
  const onWorkersChange = () => {
    pending ??= deps.clock.setTimeout(() => {
      pending = undefined;
      io.emit('workers:update', { workers: deps.registry.views(), models: deps.registry.models() });
    }, WORKERS_UPDATE_MS);
  };
  deps.registry.on('change', onWorkersChange);

  return {
    async close() {
      deps.registry.off('change', onWorkersChange);
      if (pending) deps.clock.clearTimeout(pending);
      events.off('queued', listeners.queued);
      events.off('assigned', listeners.assigned);
      events.off('chunk', listeners.chunk);
      events.off('completed', listeners.completed);
      events.off('failed', listeners.failed);
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
