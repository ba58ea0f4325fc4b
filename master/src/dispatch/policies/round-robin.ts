import type { WorkerRecord } from '../../registry/worker-record.ts';
import { byId, type DispatchPolicy, laneKey } from './types.ts';

interface LaneState {
  lastId: string | undefined;
  /** What lastId was before the latest pick, for `unpick`. */
  previousId: string | undefined;
}

/**
 * Takes candidates in id order, starting after the last one picked in the
 * same lane. Workers that come and go simply join or leave the cycle.
 */
export function createRoundRobinPolicy(): DispatchPolicy {
  const lanes = new Map<string, LaneState>();
  return {
    name: 'round-robin',
    pick(candidates, task) {
      if (candidates.length === 0) return undefined;
      const key = laneKey(task);
      const state = lanes.get(key) ?? { lastId: undefined, previousId: undefined };
      const sorted = [...candidates].sort(byId);
      const { lastId } = state;
      const next: WorkerRecord =
        (lastId === undefined ? undefined : sorted.find((w) => w.status.id > lastId)) ?? sorted[0]!;
      lanes.set(key, { lastId: next.status.id, previousId: lastId });
      return next;
    },
    unpick(workerId, task) {
      const key = laneKey(task);
      const state = lanes.get(key);
      if (state?.lastId !== workerId) return;
      lanes.set(key, { lastId: state.previousId, previousId: state.previousId });
    },
  };
}
