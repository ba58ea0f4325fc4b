import { isReadyFor, type WorkerRecord } from '../../registry/worker-record.ts';
import type { DispatchPolicy } from './types.ts';

/**
 * The candidates that can start the model without loading it (it is loaded
 * there, or it is not a local model), or all of them when none can. Loading
 * a local model takes seconds to minutes, far more than any policy's
 * difference between two workers, so every policy chooses among these first.
 *
 * The common fleet (remote providers only) costs one pass and no allocation:
 * the candidates come back as they are.
 */
export function readyFirst(
  candidates: readonly WorkerRecord[],
  model: string,
): readonly WorkerRecord[] {
  let ready = 0;
  for (const w of candidates) if (isReadyFor(w, model)) ready++;
  if (ready === 0 || ready === candidates.length) return candidates;
  return candidates.filter((w) => isReadyFor(w, model));
}

/**
 * Wraps a policy so that it picks among the workers ready for the task's
 * model first. The policy's own state (rotations, weights, latencies) sees
 * only the candidates it was given, as when the others are full.
 */
export function preferReady(policy: DispatchPolicy): DispatchPolicy {
  const wrapped: DispatchPolicy = {
    name: policy.name,
    pick: (candidates, task) => policy.pick(readyFirst(candidates, task.model), task),
  };
  if (policy.unpick) wrapped.unpick = policy.unpick.bind(policy);
  if (policy.observe) wrapped.observe = policy.observe.bind(policy);
  if (policy.forget) wrapped.forget = policy.forget.bind(policy);
  return wrapped;
}
