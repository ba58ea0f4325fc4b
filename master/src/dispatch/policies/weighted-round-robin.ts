import type { WorkerRecord } from '../../registry/worker-record.ts';
import { byId, type DispatchPolicy, laneKey } from './types.ts';

interface LaneState {
  /** workerId → current weight. */
  current: Map<string, number>;
  /** What the latest pick added to each current weight, for `unpick`. */
  last?: { workerId: string; deltas: Array<[string, number]> };
}

export const weightOf = (w: WorkerRecord) => w.status.weight;

/**
 * Smooth weighted round-robin (the nginx upstream algorithm) on each worker's
 * `weight` (status record, WEIGHT on the worker, default 1). On every pick
 * each candidate's current weight grows by its weight, the largest current
 * weight wins (ties: lowest id), and the winner gives back the candidates'
 * total. Weights 3:1 give a a b a, a a b a, …: exact shares, evenly spread.
 * A worker that is not a candidate (full, draining) neither gains nor loses.
 */
export function createWeightedRoundRobinPolicy(): DispatchPolicy {
  const lanes = new Map<string, LaneState>();
  return {
    name: 'weighted-round-robin',
    pick(candidates, task) {
      if (candidates.length === 0) return undefined;
      const key = laneKey(task);
      let state = lanes.get(key);
      if (!state) {
        state = { current: new Map() };
        lanes.set(key, state);
      }
      const { current } = state;
      let total = 0;
      let best: WorkerRecord | undefined;
      for (const w of [...candidates].sort(byId)) {
        const weight = weightOf(w);
        total += weight;
        current.set(w.status.id, (current.get(w.status.id) ?? 0) + weight);
        if (!best || current.get(w.status.id)! > current.get(best.status.id)!) best = w;
      }
      const chosen = best!;
      current.set(chosen.status.id, current.get(chosen.status.id)! - total);
      const deltas: Array<[string, number]> = candidates.map((w) => [w.status.id, weightOf(w)]);
      deltas.push([chosen.status.id, -total]);
      state.last = { workerId: chosen.status.id, deltas };
      return chosen;
    },
    unpick(workerId, task) {
      const state = lanes.get(laneKey(task));
      if (!state?.last || state.last.workerId !== workerId) return;
      for (const [id, delta] of state.last.deltas)
        if (state.current.has(id)) state.current.set(id, state.current.get(id)! - delta);
      state.last = undefined;
    },
    forget(workerId) {
      for (const state of lanes.values()) {
        state.current.delete(workerId);
        if (state.last?.deltas.some(([id]) => id === workerId)) state.last = undefined;
      }
    },
  };
}
