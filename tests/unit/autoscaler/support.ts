/** Fleet views for the autoscaler's unit tests. */
import { loadAutoscalerConfig, type PoolSpec } from '../../../autoscaler/src/config.ts';
import type { FleetView } from '../../../autoscaler/src/observe.ts';
import type { MetricsSnapshot } from '../../../proto/src/schemas/metrics.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import { workerView } from '../../helpers/worker-view.ts';

export const cpuPool: PoolSpec = loadAutoscalerConfig({
  AUTOSCALE_POOLS: 'local:cpu:1-6',
  AUTOSCALE_COOLDOWN_UP_MS: '1000',
  AUTOSCALE_COOLDOWN_DOWN_MS: '5000',
}).pools[0]!;

export function worker(id: string, over: Partial<WorkerView> = {}): WorkerView {
  return workerView({ id, lastSeen: 0, ...over });
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
