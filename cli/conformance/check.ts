/**
 * What a conformance check is: a named step, the section of docs/PROTOCOL.md
 * it holds the worker to, and how it ends (passed, failed with a reason a
 * person can act on, or skipped with why).
 */
import { ConformanceFailure } from './check-errors.ts';
import type { ConformanceContext } from './context.ts';
import type { WorkerNeed } from './worker-handle.ts';

export interface Check {
  /** `group.name`, e.g. `registration.heartbeat`; what `--checks` selects. */
  id: string;
  /** One line: what a conforming worker does. */
  title: string;
  /** Where docs/PROTOCOL.md states the rule, e.g. `MQTT › workers/{id}/heartbeat`. */
  section: string;
  /** The check fails when it has not ended by then. */
  timeoutMs: number;
  /** Unset: it needs nothing but the wire. */
  needs?: readonly WorkerNeed[];
  run(ctx: ConformanceContext): Promise<void>;
}

export type CheckOutcome = 'passed' | 'failed' | 'skipped';

export interface CheckResult {
  id: string;
  title: string;
  outcome: CheckOutcome;
  /** PROTOCOL.md § …: the rule the check holds the worker to. */
  citation: string;
  /** Why it failed or was skipped; absent when it passed. */
  detail?: string;
  ms: number;
}

export const citation = (section: string) => `PROTOCOL.md § ${section}`;

/** Throws a ConformanceFailure with `message` unless `condition` holds. */
export function expectThat(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ConformanceFailure(message);
}
