import type { WorkerRecord } from '../../registry/worker-record.ts';
import { createLowestScorePicker } from './lowest-score.ts';
import type { DispatchPolicy } from './types.ts';

/** In-flight share of a worker's slots, as the master counts it (reservations included). */
export const connectionLoad = (w: WorkerRecord) => w.active.size / w.status.slots;

/** Lowest active/slots ratio wins; ties rotate round-robin so equal workers share the work. */
export function createLeastConnectionsPolicy(): DispatchPolicy {
  return { name: 'least-connections', ...createLowestScorePicker(connectionLoad) };
}
