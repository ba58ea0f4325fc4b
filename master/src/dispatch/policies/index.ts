import type { POLICY_NAMES } from '../../config.ts';
import { createLatencyAwarePolicy } from './latency-aware.ts';
import { createLeastConnectionsPolicy } from './least-connections.ts';
import { createLeastLoadedPolicy } from './least-loaded.ts';
import { preferReady } from './prefer-ready.ts';
import { createRoundRobinPolicy } from './round-robin.ts';
import type { DispatchPolicy } from './types.ts';
import { createWeightedRoundRobinPolicy } from './weighted-round-robin.ts';

export type PolicyName = (typeof POLICY_NAMES)[number];

const FACTORIES: Record<PolicyName, () => DispatchPolicy> = {
  'round-robin': createRoundRobinPolicy,
  'least-connections': createLeastConnectionsPolicy,
  'least-loaded': createLeastLoadedPolicy,
  'weighted-round-robin': createWeightedRoundRobinPolicy,
  'latency-aware': createLatencyAwarePolicy,
};

/** The named policy, choosing among the workers that have the task's model loaded first. */
export function createPolicy(name: PolicyName): DispatchPolicy {
  const factory = FACTORIES[name];
  if (!factory) throw new Error(`unknown dispatch policy: ${String(name)}`);
  return preferReady(factory());
}
