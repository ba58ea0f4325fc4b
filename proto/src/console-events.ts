/**
 * The Socket.IO contract between the operator console (`/console`) and the
 * master: its namespace, its event names, the handshake the browser sends
 * (a zod schema, parsed by the master) and the payloads the master pushes
 * (typed). The console only listens: commands go over the REST API.
 */
import { z } from 'zod';
import type { AlertsResponse, SeriesPoint } from './schemas/console.ts';
import type { FleetState } from './schemas/fleet.ts';
import type { WorkerView } from './schemas/worker.ts';
import type { FleetSummary } from './socket-events.ts';

/** The console's namespace on the chat's Socket.IO server (same path, same port). */
export const CONSOLE_NAMESPACE = '/console';

/**
 * The handshake's `auth`, besides the admin `token`: `since` (Unix ms, the
 * newest series point the browser already holds after a reconnect) trims
 * the snapshot's series to what it missed.
 */
export const consoleHandshakeSchema = z.object({
  token: z.string().max(4_096).optional(),
  since: z.number().int().nonnegative().optional(),
});
export type ConsoleHandshake = z.infer<typeof consoleHandshakeSchema>;

/** A worker as the console lists it: its view, what this master counted of it, and its health. */
export interface ConsoleWorker extends WorkerView {
  /**
   * `degraded`: online, but its heartbeats are late (more than two periods);
   * `draining`: online, taking no new work.
   */
  health: 'online' | 'draining' | 'degraded' | 'offline';
  /** Tasks it completed, and tasks that failed on it, since this master started. */
  done: number;
  failed: number;
}

/** At most MAX_PANEL_WORKERS workers (online first, by id); `fleet` counts them all. */
export interface ConsoleWorkers {
  /** When the master measured it (relative times are against this). */
  at: number;
  workers: ConsoleWorker[];
  models: string[];
  fleet: FleetSummary;
}

/** Sent once on every connect: everything the console draws, then live events extend it. */
export interface ConsoleState {
  /** Series points of the last hour (or since the handshake's `since`), oldest first. */
  points: SeriesPoint[];
  workers: ConsoleWorkers;
  fleet: FleetState;
  alerts: AlertsResponse;
}

export const CONSOLE_EVENTS = {
  state: 'console:state',
  point: 'console:point',
  workers: 'console:workers',
  fleet: 'console:fleet',
  alerts: 'console:alerts',
} as const;

export interface ConsoleServerEvents {
  'console:state': (state: ConsoleState) => void;
  /** A new second of the series (once a second). */
  'console:point': (point: SeriesPoint) => void;
  /** The worker list after a registry change (at most every CONSOLE_PUSH_MS), or a refresh. */
  'console:workers': (workers: ConsoleWorkers) => void;
  /** Emergency stop, drains or cordons changed. */
  'console:fleet': (fleet: FleetState) => void;
  'console:alerts': (alerts: AlertsResponse) => void;
}

/** The console sends nothing after its handshake; any event is answered with an error. */
export type ConsoleClientEvents = Record<string, never>;

/** Worker, fleet and alert changes reach the console at most this often (each kind). */
export const CONSOLE_PUSH_MS = 250;
/** The worker list is sent again at least this often (heartbeat times, late heartbeats). */
export const CONSOLE_WORKERS_REFRESH_MS = 2_000;
