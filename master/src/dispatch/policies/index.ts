import { createLeastConnectionsPolicy } from './least-connections.ts';
import { createRoundRobinPolicy } from './round-robin.ts';
import type { DispatchPolicy } from './types.ts';

export type PolicyName = 'round-robin' | 'least-connections';

export function createPolicy(name: PolicyName): DispatchPolicy {
  switch (name) {
    case 'round-robin':
      return createRoundRobinPolicy();
    case 'least-connections':
      return createLeastConnectionsPolicy();
    default: {
      const unknown: never = name;
      throw new Error(`unknown dispatch policy: ${String(unknown)}`);
    }
  }
}
