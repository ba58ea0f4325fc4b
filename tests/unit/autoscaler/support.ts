/** Fleet views for the autoscaler's unit tests. */
import { loadAutoscalerConfig, type PoolSpec } from '../../../autoscaler/src/config.ts';
import type { FleetView } from '../../../autoscaler/src/observe.ts';
import type { MetricsSnapshot } from '../../../proto/src/schemas/metrics.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';

export const cpuPool: PoolSpec = loadAutoscalerConfig({
  AUTOSCALE_POOLS: 'local:cpu:1-6',
  AUTOSCALE_COOLDOWN_UP_MS: '1000',
  AUTOSCALE_COOLDOWN_DOWN_MS: '5000',
}).pools[0]!;

export function worker(id: string, over: Partial<WorkerView> = {}): WorkerView {
  return {
    id,
    kind: 'cpu',
    state: 'online',
    models: ['echo'],
    providers: ['echo'],
    labels: {},
    slots: 2,
    active: 0,
    host: 'h',
    version: '0.1.0',
    lastSeen: 0,
    gpus: [],
    ...over,
  };
}

export function fleet(workers: WorkerView[], queues: MetricsSnapshot['queues'] = {}): FleetView {
  return {
    workers,
    metrics: {
      tasks: { completed: 0, failed: 0 },
      workers: { online: workers.length, offline: 0, slots: 0, active: 0 },
      queues,
      resultsRejected: {},
      cache: { enabled: false, hits: 0, misses: 0 },
    },
  };
}
