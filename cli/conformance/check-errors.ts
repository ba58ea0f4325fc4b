/**
 * How a check ends other than passing, as errors a check throws: kept apart
 * from check.ts so that what the checks reach (the worker handles) can throw
 * them without depending on the checks.
 */
import { FlotaError } from '../../common/errors.ts';

/** The worker broke the rule of the check's section. */
export class ConformanceFailure extends FlotaError {
  constructor(message: string) {
    super('conformance_failed', message);
  }
}

/**
 * The check does not apply to this worker (it says so itself, e.g. no
 * `continuation`), or needs what the kit cannot do to it (signal a worker it
 * attached to without --pid).
 */
export class CheckSkipped extends FlotaError {
  constructor(reason: string) {
    super('conformance_skipped', reason);
  }
}
