import type { WorkerRecord } from '../../registry/worker-record.ts';
import type { DispatchPolicy } from './types.ts';

/** Takes candidates in id order, starting after the last one picked. */
export function createRoundRobinPolicy(): DispatchPolicy {
  let lastId: string | undefined;
  return {
    name: 'round-robin',
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      const sorted = [...candidates].sort((a, b) => a.status.id.localeCompare(b.status.id));
      const next: WorkerRecord =
        (lastId === undefined ? undefined : sorted.find((w) => w.status.id > lastId!)) ??
        sorted[0]!;
      lastId = next.status.id;
      return next;
    },
  };
}
