/**
 * This machine's clock against another flota depends on: leases and
 * heartbeats are stamped on one machine and judged on another, so clocks
 * that disagree by seconds expire work that is alive (or keep dead work).
 */
import { type CheckResult, fail, pass } from './result.ts';

/** Largest disagreement that leases and heartbeats tolerate. */
export const MAX_CLOCK_SKEW_MS = 2_000;

export interface ClockSample {
  /** Whose clock: `Redis`, `PostgreSQL`, `the master`. */
  source: string;
  /** Its time, Unix ms. */
  remoteMs: number;
  /** Our time when it was read (halfway through the round trip), Unix ms. */
  localMs: number;
  /** How finely the remote clock is told (an HTTP Date header: whole seconds). */
  resolutionMs?: number;
}

/** `noSample` says why there was nothing to compare with. */
export function clockVerdict(sample: ClockSample | undefined, noSample: string): CheckResult {
  if (sample === undefined) return pass('clock', `clock: ${noSample}`);
  const resolution = sample.resolutionMs ?? 0;
  // A whole-second Date header is on average half a second behind.
  const skew = sample.localMs - (sample.remoteMs + resolution / 2);
  const seconds = (Math.abs(skew) / 1_000).toFixed(1);
  if (Math.abs(skew) <= MAX_CLOCK_SKEW_MS + resolution / 2) {
    return pass('clock', `clock agrees with ${sample.source} (within ${seconds} s)`);
  }
  return fail(
    'clock',
    `clock is ${seconds} s ${skew > 0 ? 'ahead of' : 'behind'} ${sample.source}`,
    `leases and heartbeats need clocks within ${MAX_CLOCK_SKEW_MS / 1_000} s of each other`,
    'Synchronise the clocks (e.g. timedatectl set-ntp true, or chrony) on this machine and the other',
  );
}
