import type { WorkerRecord } from '../../registry/worker-record.ts';
import { LatencyBook } from './latency-book.ts';
import { createRoundRobinPolicy } from './round-robin.ts';
import { type DispatchPolicy, laneKey, smallest, type TaskNeeds } from './types.ts';

/** Added to every estimate so a worker that reports 0 ms still pays for its queue. */
export const LATENCY_FLOOR_MS = 1;
/**
 * A measured worker not picked in this many picks of the lane is probed
 * again (its average may be out of date), so even a slow worker keeps
 * getting about one task in PROBE_EVERY + 1.
 */
export const PROBE_EVERY = 50;

interface LaneState {
  /** Picks made in this lane (unpicked ones taken back). */
  seq: number;
  /** workerId → seq of its latest pick in this lane. */
  lastPick: Map<string, number>;
  last?: { workerId: string; previousPick: number | undefined };
}

/**
 * Lowest expected completion time wins:
 *
 *   score = (ewma(worker, model) + LATENCY_FLOOR_MS) × (active + 1) / slots
 *
 * ewma is the moving average of the worker's processingMs for the model
 * (α = 0.3, fed by `observe`). The factor (active + 1) / slots assumes the
 * worker shares its throughput among the tasks it runs: with every slot
 * busy a new task finishes about one ewma later; on an idle worker with
 * many slots, sooner. So a worker 4x slower gets work only once the fast
 * one holds about 4x as many tasks per slot.
 *
 * Optimistic start: a worker with no sample for the model that this lane
 * has never picked is picked first (ties round-robin), so a new worker gets
 * measured. Until its first sample it counts at the mean estimate of the
 * measured candidates. A measured worker left alone for PROBE_EVERY picks
 * is probed the same way. Everything else ties round-robin.
 */
export function createLatencyAwarePolicy(book = new LatencyBook()): DispatchPolicy {
  const lanes = new Map<string, LaneState>();
  const tieBreak = createRoundRobinPolicy();

  const laneState = (task: TaskNeeds): LaneState => {
    const key = laneKey(task);
    let state = lanes.get(key);
    if (!state) {
      state = { seq: 0, lastPick: new Map() };
      lanes.set(key, state);
    }
    return state;
  };

  const choose = (
    candidates: readonly WorkerRecord[],
    task: TaskNeeds,
    state: LaneState,
  ): WorkerRecord | undefined => {
    const estimates = candidates.map((w) => book.estimate(w.status.id, task.model));
    const probes = candidates.filter((w, i) => {
      const last = state.lastPick.get(w.status.id);
      if (estimates[i] === undefined) return last === undefined;
      return state.seq - (last ?? 0) > PROBE_EVERY;
    });
    if (probes.length > 0) return tieBreak.pick(probes, task);
    const known = estimates.filter((e) => e !== undefined);
    const neutral = known.length > 0 ? known.reduce((s, e) => s + e, 0) / known.length : 0;
    const scores = candidates.map(
      (w, i) =>
        ((estimates[i] ?? neutral) + LATENCY_FLOOR_MS) * ((w.active.size + 1) / w.status.slots),
    );
    const lowest = smallest(scores);
    return tieBreak.pick(
      candidates.filter((_, i) => scores[i]! - lowest <= 1e-9 * Math.max(1, lowest)),
      task,
    );
  };

  return {
    name: 'latency-aware',
    pick(candidates, task) {
      if (candidates.length === 0) return undefined;
      const state = laneState(task);
      state.seq += 1;
      const chosen = choose(candidates, task, state)!;
      const id = chosen.status.id;
      state.last = { workerId: id, previousPick: state.lastPick.get(id) };
      state.lastPick.set(id, state.seq);
      return chosen;
    },
    unpick(workerId, task) {
      const state = lanes.get(laneKey(task));
      if (!state?.last || state.last.workerId !== workerId) return;
      const { previousPick } = state.last;
      if (previousPick === undefined) state.lastPick.delete(workerId);
      else state.lastPick.set(workerId, previousPick);
      state.seq -= 1;
      state.last = undefined;
      tieBreak.unpick!(workerId, task);
    },
    observe(sample) {
      book.observe(sample);
    },
    forget(workerId) {
      book.forget(workerId);
      for (const state of lanes.values()) {
        state.lastPick.delete(workerId);
        if (state.last?.workerId === workerId) state.last = undefined;
      }
    },
  };
}
