/**
 * The operator console's Socket.IO namespace (`/console`) on the chat's
 * server: admin tokens only. A connection gets the whole picture at once
 * (`console:state`: the last hour of the series, the workers, the fleet's
 * dispatch state, the alerts), then every new series point, and the
 * workers, fleet state and alerts again whenever they change, each at most
 * every CONSOLE_PUSH_MS. Commands go over the REST API; the console only
 * listens.
 */
import type { Namespace, Server } from 'socket.io';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  CONSOLE_EVENTS,
  CONSOLE_NAMESPACE,
  CONSOLE_PUSH_MS,
  CONSOLE_WORKERS_REFRESH_MS,
  type ConsoleClientEvents,
  type ConsoleServerEvents,
  type ConsoleState,
  consoleHandshakeSchema,
} from '../../../proto/src/console-events.ts';
import { API_ERROR_CODES } from '../../../proto/src/http-api.ts';
import type { Alert, AlertsResponse, SeriesPoint } from '../../../proto/src/schemas/console.ts';
import type { FleetState } from '../../../proto/src/schemas/fleet.ts';
import type { ApiRole } from '../config.ts';
import { type ApiAuth, type SocketRefusal, socketTokenCheck } from '../http/auth.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { TaskEvents } from '../tasks/task-events.ts';
import { consoleWorkers } from './console-workers.ts';
import { WorkerTally } from './worker-tally.ts';

/** What the console reads of the series recorder (monitor/series.ts). */
export interface SeriesFeed {
  points(sinceMs?: number): SeriesPoint[];
  on(event: 'point', listener: (point: SeriesPoint) => void): unknown;
  off(event: 'point', listener: (point: SeriesPoint) => void): unknown;
}

/** What the console reads of the alert engine (alerts/alert-engine.ts). */
export interface AlertFeed {
  current(): AlertsResponse;
  on(event: 'change', listener: (alert: Alert) => void): unknown;
  off(event: 'change', listener: (alert: Alert) => void): unknown;
}

/** What the console reads of fleet control (fleet/fleet-control.ts). */
export interface FleetFeed {
  state(): FleetState;
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

export interface ConsoleSocketDeps {
  /** The chat's Socket.IO server: its origin check covers every namespace. */
  io: Server;
  auth: ApiAuth;
  registry: WorkerRegistry;
  fleet: FleetFeed;
  series: SeriesFeed;
  alerts: AlertFeed;
  /** The task events: tasks done and failed per worker are counted from them. */
  events: TaskEvents;
  /** Hears of every connection refused for its token or role (the audit trail). */
  onRefused?: (refusal: SocketRefusal) => void;
  log: Logger;
}

interface ConsoleSocketData {
  tenant: string;
  role: ApiRole;
}

type ConsoleNamespace = Namespace<
  ConsoleClientEvents,
  ConsoleServerEvents,
  Record<string, never>,
  ConsoleSocketData
>;

/** The series a snapshot carries: the last hour at most. */
const SNAPSHOT_MS = 3_600_000;
const ADMIN_NEEDED = 'the console needs an admin token (API_TOKENS entry tenant:token:admin)';

/** Runs `send` at most every `ms`, CONSOLE_PUSH_MS after the first change asked for it. */
function throttled(send: () => void, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  return {
    schedule() {
      timer ??= setTimeout(() => {
        timer = undefined;
        send();
      }, ms);
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

export function attachConsoleSocket(deps: ConsoleSocketDeps): { close(): void } {
  const log = deps.log.child({ component: 'console' });
  const { registry, fleet, series, alerts } = deps;
  const nsp = deps.io.of(CONSOLE_NAMESPACE) as unknown as ConsoleNamespace;
  const tally = new WorkerTally(deps.events);

  nsp.use(socketTokenCheck(deps.auth, log, deps.onRefused));
  nsp.use((socket, next) => {
    if (socket.data.role === 'admin') return next();
    log.warn({ tenant: socket.data.tenant }, 'console refused: not an admin token');
    deps.onRefused?.({
      from: socket.handshake.address?.slice(0, 128),
      target: 'console Socket.IO connection',
      detail: `403 ${ADMIN_NEEDED}`,
    });
    next(Object.assign(new Error(ADMIN_NEEDED), { data: { code: API_ERROR_CODES.forbidden } }));
  });
  nsp.use((socket, next) => {
    const parsed = consoleHandshakeSchema.safeParse(socket.handshake.auth ?? {});
    if (parsed.success) return next();
    const message = `console handshake: ${formatZodError(parsed.error)}`;
    log.warn({ reason: message }, 'console refused: bad handshake');
    next(Object.assign(new Error(message), { data: { code: 'bad_request' } }));
  });

  const watched = () => nsp.sockets.size > 0;
  const workersNow = () => consoleWorkers(registry, tally, Date.now());
  let workersSentAt = 0;
  const sendWorkers = () => {
    if (!watched()) return;
    workersSentAt = Date.now();
    nsp.emit(CONSOLE_EVENTS.workers, workersNow());
  };
  const workers = throttled(sendWorkers, CONSOLE_PUSH_MS);
  const fleetPush = throttled(() => {
    if (watched()) nsp.emit(CONSOLE_EVENTS.fleet, fleet.state());
  }, CONSOLE_PUSH_MS);
  const alertsPush = throttled(() => {
    if (watched()) nsp.emit(CONSOLE_EVENTS.alerts, alerts.current());
  }, CONSOLE_PUSH_MS);
  // Heartbeat times and late heartbeats change without a registry 'change'.
  const refresh = setInterval(() => {
    if (Date.now() - workersSentAt >= CONSOLE_WORKERS_REFRESH_MS) workers.schedule();
  }, CONSOLE_WORKERS_REFRESH_MS / 2);

  const onChange = () => workers.schedule();
  const onFleet = () => fleetPush.schedule();
  const onAlert = () => alertsPush.schedule();
  const onPoint = (point: SeriesPoint) => {
    if (watched()) nsp.emit(CONSOLE_EVENTS.point, point);
  };
  registry.on('change', onChange);
  fleet.on('change', onFleet);
  alerts.on('change', onAlert);
  series.on('point', onPoint);

  nsp.on('connection', (socket) => {
    socket.onAny((event: unknown) => {
      log.warn(
        { event: String(event).slice(0, 64) },
        'console event dropped: the console only listens',
      );
    });
    const { since } = consoleHandshakeSchema.parse(socket.handshake.auth ?? {});
    const oldest = Date.now() - SNAPSHOT_MS;
    const state: ConsoleState = {
      points: series.points(since === undefined ? oldest : Math.max(since, oldest)),
      workers: workersNow(),
      fleet: fleet.state(),
      alerts: alerts.current(),
    };
    socket.emit(CONSOLE_EVENTS.state, state);
    log.debug({ tenant: socket.data.tenant, points: state.points.length }, 'console connected');
  });

  return {
    close() {
      registry.off('change', onChange);
      fleet.off('change', onFleet);
      alerts.off('change', onAlert);
      series.off('point', onPoint);
      clearInterval(refresh);
      workers.cancel();
      fleetPush.cancel();
      alertsPush.cancel();
      tally.close();
      nsp.disconnectSockets(true);
    },
  };
}
