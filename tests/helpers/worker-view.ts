/** A worker as `GET /api/workers` and the `workers:update` event describe it, for tests that fake a fleet. */
import type { WorkerView } from '../../proto/src/schemas/worker.ts';

/** An online CPU worker serving `echo` with 2 free slots; `overrides` set the rest. */
export function workerView(overrides: Partial<WorkerView> & Pick<WorkerView, 'id'>): WorkerView {
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
    gpus: [],
    ...overrides,
  };
}
