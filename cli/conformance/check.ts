/**
 * What a conformance check is: a named step, the section of docs/PROTOCOL.md
 * it holds the worker to, and how it ends (passed, failed with a reason a
 * person can act on, or skipped with why).
 */
import { FlotaError } from '../../common/errors.ts';
import type { ConformanceContext } from './context.ts';

export interface Check {
  /** `group.name`, e.g. `registration.heartbeat`; what `--checks` selects. */
  id: string;
  /** One line: what a conforming worker does. */
  title: string;
  /** Where docs/PROTOCOL.md states the rule, e.g. `MQTT › workers/{id}/heartbeat`. */
  section: string;
  /** The check fails when it has not ended by then. */
  timeoutMs: number;
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

/** The worker broke the rule of the check's section. */
export class ConformanceFailure extends FlotaError {
  constructor(message: string) {
    super('conformance_failed', message);
  }
}

/** The check does not apply to this worker (it says so itself, e.g. no `continuation`). */
export class CheckSkipped extends FlotaError {
  constructor(reason: string) {
    super('conformance_skipped', reason);
  }
}

export const citation = (section: string) => `PROTOCOL.md § ${section}`;

/** Throws a ConformanceFailure with `message` unless `condition` holds. */
export function expectThat(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ConformanceFailure(message);
}
