/** Pure liveness rules, kept apart so they can be tested with plain numbers. */

/** Heartbeats a worker may miss before it is declared dead. */
export const MISSED_HEARTBEATS_LIMIT = 3;

export function isWorkerDead(
  lastSeenMs: number,
  nowMs: number,
  heartbeatIntervalMs: number,
  missedLimit: number = MISSED_HEARTBEATS_LIMIT,
): boolean {
  return nowMs - lastSeenMs > heartbeatIntervalMs * missedLimit;
}

/** An offline worker is forgotten (dropped from the list) this long after it was last heard. */
export const FORGET_OFFLINE_MS = 10 * 60_000;
