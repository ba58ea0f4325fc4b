/**
 * The console's worker list: the registry's panel (at most
 * MAX_PANEL_WORKERS, online first, and the fleet in numbers), each worker
 * with its health and what this master counted of it.
 */
import type { ConsoleWorker, ConsoleWorkers } from '../../../proto/src/console-events.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import { MAX_PANEL_WORKERS } from '../../../proto/src/socket-events.ts';
import type { WorkerRegistry } from '../registry/registry.ts';
import type { WorkerTally } from './worker-tally.ts';

/** Heartbeats later than this many periods make an online worker `degraded`. */
export const LATE_HEARTBEATS = 2;

/** A worker's health as the console shows it (green, yellow or red). */
export function healthOf(
  view: Pick<WorkerView, 'state' | 'draining' | 'lastSeen'>,
  heartbeatMs: number,
  now: number,
): ConsoleWorker['health'] {
  if (view.state !== 'online') return 'offline';
  if (now - view.lastSeen > LATE_HEARTBEATS * heartbeatMs) return 'degraded';
  return view.draining ? 'draining' : 'online';
}

export function consoleWorkers(
  registry: Pick<WorkerRegistry, 'panel' | 'get'>,
  tally: Pick<WorkerTally, 'of'>,
  now: number,
): ConsoleWorkers {
  const panel = registry.panel(MAX_PANEL_WORKERS);
  const workers = panel.workers.map((view): ConsoleWorker => {
    const heartbeatMs = registry.get(view.id)?.status.heartbeatMs ?? 1_000;
    return { ...view, health: healthOf(view, heartbeatMs, now), ...tally.of(view.id) };
  });
  return { at: now, workers, models: panel.models, fleet: panel.fleet };
}
