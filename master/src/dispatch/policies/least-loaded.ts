import type { WorkerRecord } from '../../registry/worker-record.ts';
import { connectionLoad } from './least-connections.ts';
import { createLowestScorePicker } from './lowest-score.ts';
import type { DispatchPolicy } from './types.ts';

/**
 * Machine pressure in 0..1 from the latest heartbeat: the mean of cpuPct,
 * mem.usedPct and, for a GPU worker that reports GPUs, the busiest GPU's
 * utilPct. Undefined before the first heartbeat.
 */
export function machinePressure(w: WorkerRecord): number | undefined {
  const hb = w.heartbeat;
  if (!hb) return undefined;
  const parts = [hb.cpuPct, hb.mem.usedPct];
  if (w.status.kind === 'gpu' && hb.gpus.length > 0)
    parts.push(Math.max(...hb.gpus.map((g) => g.utilPct)));
  return parts.reduce((sum, p) => sum + p, 0) / parts.length / 100;
}

/**
 * Lowest score wins, where
 *
 *   score = machinePressure + active / slots
 *
 * Heartbeats arrive about once a second, so the second term (the master's own
 * in-flight count, updated at every assignment) keeps a burst between two
 * heartbeats from landing on one worker: each task it takes adds 1/slots.
 * A worker with no heartbeat yet counts at the mean pressure of the
 * candidates that have one (0 if none), neither favoured nor shunned.
 * Ties rotate round-robin.
 */
export function createLeastLoadedPolicy(): DispatchPolicy {
  const picker = createLowestScorePicker((w, candidates) => {
    const known = candidates.map(machinePressure).filter((p) => p !== undefined);
    const fallback = known.length > 0 ? known.reduce((s, p) => s + p, 0) / known.length : 0;
    return (machinePressure(w) ?? fallback) + connectionLoad(w);
  });
  return { name: 'least-loaded', ...picker };
}
