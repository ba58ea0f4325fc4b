/**
 * The autoscaler's whole judgement, as one pure function: given what a pool
 * of workers runs now, how much work waits for it and how busy it is, how
 * many replicas should it run? No I/O and no clock of its own — `now` comes
 * in, the pool's memory (last scalings) comes in and goes out — so every rule
 * below is tested with plain numbers (tests/unit/autoscaler/decide.test.ts).
 *
 * The rule is proportional, like Kubernetes' HPA, but on the work itself:
 * every waiting or running task wants a slot, and a pool should run enough
 * workers that its slots are `targetUtilisation` busy. Growing is quick (a
 * backlog is users waiting), shrinking is slow (load must stay low for a
 * whole cooldown), and both move at most a step at a time.
 */
import type {
  PoolObservation,
  ScaleAction,
  ScaleDecisionView,
  ScaleReason,
} from '../../proto/src/schemas/autoscaler.ts';

export type { PoolObservation, ScaleAction, ScaleReason };

export interface PoolPolicy {
  /** Never fewer replicas (0 lets an idle pool go away entirely). */
  min: number;
  /** Never more replicas. */
  max: number;
  /** Most replicas added by one decision. */
  stepUp: number;
  /** Most replicas removed by one decision. */
  stepDown: number;
  /** Least time between two scale-ups, so new workers can register first. */
  cooldownUpMs: number;
  /** How long load must stay low, and how long after any scaling, before a scale-down. */
  cooldownDownMs: number;
  /**
   * Least time from a scale-down to the next scale-up. Swarm gives a new
   * replica the slot, and so the worker id, of one it removed while that one
   * may still be draining; waiting out the drain keeps ids unique.
   */
  upAfterDownMs: number;
  /** Share of the pool's slots that should be busy, 0 < x ≤ 1. */
  targetUtilisation: number;
  /** Slots assumed per worker while none of the pool is online to tell. */
  slotsPerWorker: number;
}

/** What the function remembers between calls, per pool. */
export interface PoolMemory {
  lastUpAt?: number;
  lastDownAt?: number;
  /** Since when the pool has wanted fewer replicas, without a break. */
  lowSince?: number;
}

/** The decision, and the memory to pass to the next call. */
export type ScaleDecision = ScaleDecisionView & { memory: PoolMemory };

const clamp = (n: number, low: number, high: number) => Math.min(high, Math.max(low, n));

/** Replicas the load asks for: every waiting or running task wants a slot. */
export function wantedReplicas(policy: PoolPolicy, seen: PoolObservation): number {
  const perWorker = seen.online > 0 ? seen.slots / seen.online : policy.slotsPerWorker;
  const demand = seen.active + seen.backlog;
  const raw = Math.ceil(demand / (Math.max(1, perWorker) * policy.targetUtilisation));
  return clamp(raw, policy.min, policy.max);
}

export function decide(
  policy: PoolPolicy,
  seen: PoolObservation,
  memory: PoolMemory,
  now: number,
): ScaleDecision {
  const from = seen.replicas;
  const wanted = wantedReplicas(policy, seen);
  const utilisation =
    seen.slots > 0 ? seen.active / seen.slots : seen.active + seen.backlog > 0 ? 1 : 0;
  const result = (
    action: ScaleAction,
    reason: ScaleReason,
    replicas: number,
    next: PoolMemory,
  ): ScaleDecision => ({ action, reason, from, replicas, wanted, utilisation, memory: next });
  const calm = { ...memory, lowSince: undefined };

  const since = (at: number | undefined) => (at === undefined ? Infinity : now - at);
  const upHeld = (): ScaleDecision | undefined => {
    if (since(memory.lastUpAt) < policy.cooldownUpMs) return result('hold', 'cooldown', from, calm);
    if (since(memory.lastDownAt) < policy.upAfterDownMs) {
      return result('hold', 'draining', from, calm);
    }
    return undefined;
  };

  // Bounds first: they are the operator's word. Only a replica that went away
  // on its own brings a pool below its minimum once it ran; replacing it waits
  // out cooldownUp, so a worker that crashes at start is not restarted in a
  // tight loop.
  if (from < policy.min) {
    const replicas = Math.max(policy.min, Math.min(wanted, from + policy.stepUp));
    return upHeld() ?? result('up', 'below-min', replicas, { ...calm, lastUpAt: now });
  }
  if (from > policy.max) {
    return result('down', 'above-max', policy.max, { ...calm, lastDownAt: now });
  }

  if (wanted > from) {
    const replicas = Math.min(wanted, from + policy.stepUp);
    const reason = seen.backlog > 0 ? 'backlog' : 'busy';
    return upHeld() ?? result('up', reason, replicas, { ...calm, lastUpAt: now });
  }

  if (wanted < from) {
    // Slots may be plenty on paper while tasks still wait (a model only some
    // workers serve, a worker still starting): never shrink under a backlog.
    if (seen.backlog > 0) return result('hold', 'tasks-waiting', from, calm);
    const lowSince = memory.lowSince ?? now;
    const low = { ...memory, lowSince };
    if (now - lowSince < policy.cooldownDownMs) return result('hold', 'stabilising', from, low);
    const lastScaled = Math.max(memory.lastUpAt ?? -Infinity, memory.lastDownAt ?? -Infinity);
    if (now - lastScaled < policy.cooldownDownMs) return result('hold', 'cooldown', from, low);
    const replicas = Math.max(wanted, from - policy.stepDown);
    return result('down', 'idle', replicas, { ...memory, lowSince: now, lastDownAt: now });
  }

  return result('hold', 'steady', from, calm);
}

/** A plain error for a policy that cannot work, naming the setting to fix. */
export function policyProblems(policy: PoolPolicy): string[] {
  const problems: string[] = [];
  if (policy.min > policy.max) problems.push(`min (${policy.min}) is above max (${policy.max})`);
  if (policy.stepUp < 1) problems.push('stepUp must be at least 1');
  if (policy.stepDown < 1) problems.push('stepDown must be at least 1');
  if (!(policy.targetUtilisation > 0 && policy.targetUtilisation <= 1)) {
    problems.push('targetUtilisation must be above 0 and at most 1');
  }
  if (policy.slotsPerWorker < 1) problems.push('slotsPerWorker must be at least 1');
  return problems;
}
