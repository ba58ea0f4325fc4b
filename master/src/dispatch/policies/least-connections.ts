import type { WorkerRecord } from '../../registry/worker-record.ts';
import { createRoundRobinPolicy } from './round-robin.ts';
import type { DispatchPolicy } from './types.ts';

const load = (w: WorkerRecord) => w.active.size / w.status.slots;

/** Lowest active/slots ratio wins; ties rotate round-robin so equal workers share the work. */
export function createLeastConnectionsPolicy(): DispatchPolicy {
  const tieBreak = createRoundRobinPolicy();
  return {
    name: 'least-connections',
    pick(candidates, task) {
      if (candidates.length === 0) return undefined;
      const lowest = Math.min(...candidates.map(load));
      return tieBreak.pick(
        candidates.filter((w) => load(w) === lowest),
        task,
      );
    },
  };
}
