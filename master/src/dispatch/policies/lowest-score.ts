import type { WorkerRecord } from '../../registry/worker-record.ts';
import { createRoundRobinPolicy } from './round-robin.ts';
import { type DispatchPolicy, smallest, type TaskNeeds } from './types.ts';

/** Scores closer than this count as equal, so float noise never decides a pick. */
const TIE_EPSILON = 1e-9;

/**
 * The skeleton of the score-based policies: the lowest score wins, and ties
 * rotate round-robin (per lane) so equal workers share the work.
 */
export function createLowestScorePicker(
  score: (worker: WorkerRecord, candidates: readonly WorkerRecord[], task: TaskNeeds) => number,
): Required<Pick<DispatchPolicy, 'pick' | 'unpick'>> {
  const tieBreak = createRoundRobinPolicy();
  return {
    pick(candidates, task) {
      if (candidates.length === 0) return undefined;
      const scores = candidates.map((w) => score(w, candidates, task));
      const lowest = smallest(scores);
      const tied = candidates.filter((_, i) => scores[i]! - lowest <= TIE_EPSILON);
      return tieBreak.pick(tied, task);
    },
    unpick(workerId, task) {
      tieBreak.unpick!(workerId, task);
    },
  };
}
