/**
 * The autoscaler's eyes: the master's REST API (`/api/metrics` for job counts
 * per queue, `/api/workers` for slots and running tasks), each answer checked
 * against its schema in proto/, then cut into one observation per pool.
 */
import { FlotaError } from '../../common/errors.ts';
import { formatZodError } from '../../common/zod-error.ts';
import { type CapabilityClass, parseQueueName } from '../../proto/src/queues.ts';
import {
  type MetricsSnapshot,
  metricsSnapshotSchema,
  workersResponseSchema,
} from '../../proto/src/schemas/metrics.ts';
import type { WorkerKind, WorkerView } from '../../proto/src/schemas/worker.ts';
import type { PoolSpec } from './config.ts';
import type { PoolObservation } from './decide.ts';

/**
 * The queues a pool's new replica would drain. Any worker may take an `any`
 * task, but sizing GPU workers for CPU work would be waste: CPU pools answer
 * for `any` queues, GPU pools for `gpu` queues.
 */
const CLASS_OF_POOL: Record<WorkerKind, CapabilityClass> = { cpu: 'any', gpu: 'gpu' };

/** Job states that are work waiting for a slot: queued, queued by priority, or in retry backoff. */
const WAITING_STATES = ['waiting', 'wait', 'prioritized', 'delayed'];

export interface FleetView {
  metrics: MetricsSnapshot;
  workers: WorkerView[];
}

export interface FleetSource {
  read(): Promise<FleetView>;
}

export class ObserveError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('observe_failed', message, options);
  }
}

/** Reads the fleet from a master at `baseUrl`, with `token` when its API needs one. */
export function masterSource(baseUrl: string, token?: string, timeoutMs = 4_000): FleetSource {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const get = async (path: string): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(new URL(path, baseUrl), {
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new ObserveError(`the master at ${baseUrl} did not answer ${path}`, { cause: err });
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new ObserveError(`the master answered ${path} with HTTP ${res.status}`);
    }
    try {
      return await res.json();
    } catch (err) {
      throw new ObserveError(`the master's answer to ${path} is not JSON`, { cause: err });
    }
  };
  return {
    async read() {
      const [metrics, workers] = await Promise.all([get('/api/metrics'), get('/api/workers')]);
      const m = metricsSnapshotSchema.safeParse(metrics);
      if (!m.success) throw new ObserveError(`/api/metrics: ${formatZodError(m.error)}`);
      const w = workersResponseSchema.safeParse(workers);
      if (!w.success) throw new ObserveError(`/api/workers: ${formatZodError(w.error)}`);
      return { metrics: m.data, workers: w.data.workers };
    },
  };
}

export function poolWorkers(pool: PoolSpec, workers: readonly WorkerView[]): WorkerView[] {
  return workers.filter((w) => w.kind === pool.capability && w.id.startsWith(pool.workerPrefix));
}

export function onlinePoolWorkers(pool: PoolSpec, workers: readonly WorkerView[]): WorkerView[] {
  return poolWorkers(pool, workers).filter((w) => w.state === 'online');
}

/** What a pool's workers serve, enough to tell which queues they drain. */
export type Serves = Pick<WorkerView, 'models' | 'labels'>;

/**
 * Tasks waiting that a new replica of the pool could run: queues of the
 * pool's class (see CLASS_OF_POOL) whose model and labels one of `servers`
 * serves. `servers` are the pool's online workers, or, while none is online,
 * the ones last seen (a new replica is configured like them). A pool never
 * seen online has nothing to compare with, so every queue of its class counts:
 * that is how a pool that starts at zero wakes up. A queue whose labels are
 * only a digest (a long label set) cannot be matched and counts only then.
 */
export function poolBacklog(
  pool: PoolSpec,
  metrics: MetricsSnapshot,
  servers: readonly Serves[] | undefined,
): number {
  let backlog = 0;
  for (const [name, counts] of Object.entries(metrics.queues)) {
    const key = parseQueueName(name);
    if (!key || key.capability !== CLASS_OF_POOL[pool.capability]) continue;
    const served =
      servers === undefined ||
      (key.labelsDigest === undefined &&
        servers.some(
          (w) =>
            w.models.includes(key.model) &&
            Object.entries(key.labels ?? {}).every(([k, v]) => w.labels[k] === v),
        ));
    if (!served) continue;
    for (const state of WAITING_STATES) backlog += counts[state] ?? 0;
  }
  return backlog;
}

/** `lastServers`: what the pool's workers served when some were last online. */
export function observePool(
  pool: PoolSpec,
  fleet: FleetView,
  replicas: number,
  lastServers?: readonly Serves[],
): PoolObservation {
  const online = onlinePoolWorkers(pool, fleet.workers);
  return {
    replicas,
    backlog: poolBacklog(pool, fleet.metrics, online.length > 0 ? online : lastServers),
    active: online.reduce((sum, w) => sum + w.active, 0),
    slots: online.reduce((sum, w) => sum + w.slots, 0),
    online: online.length,
  };
}
