/**
 * Whether the master keeps up with heartbeats, from its own counters
 * (`flota_heartbeats_total{outcome}` and the `flota_heartbeat_lag_seconds`
 * histogram in `GET /metrics`): read before and after a window, the
 * difference says how many heartbeats it received and applied in that window
 * and how late (sent → applied; the sims run on the same host, so one clock).
 */
import { round2 } from './drive.ts';

export interface HeartbeatCounters {
  received: number;
  applied: number;
  lagSumSec: number;
  /** Cumulative applied count per upper bound (seconds), the last one +Inf. */
  buckets: Array<{ le: number; count: number }>;
}

export interface HeartbeatWindow {
  seconds: number;
  received: number;
  applied: number;
  /** Heartbeats the sims sent in the same window. */
  sent: number;
  /** applied ÷ sent, in %: under 100 by more than the window's edges, the master fell behind. */
  appliedPctOfSent: number;
  lagMeanMs: number;
  /** Upper bound of the histogram bucket holding the median / 99th percentile lag. */
  lagP50Ms: number;
  lagP99Ms: number;
}

const num = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? Number.NaN);

export async function readHeartbeatCounters(baseUrl: string): Promise<HeartbeatCounters> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const buckets = [...text.matchAll(/^flota_heartbeat_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)]
    .map((m) => ({
      le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]),
      count: Number(m[2]),
    }))
    .sort((a, b) => a.le - b.le);
  return {
    received: num(text, /^flota_heartbeats_total\{outcome="received"\} (\S+)$/m),
    applied: num(text, /^flota_heartbeats_total\{outcome="applied"\} (\S+)$/m),
    lagSumSec: num(text, /^flota_heartbeat_lag_seconds_sum (\S+)$/m),
    buckets,
  };
}

function quantileMs(before: HeartbeatCounters, after: HeartbeatCounters, q: number): number {
  const total = after.applied - before.applied;
  if (total <= 0) return Number.NaN;
  for (const [i, bucket] of after.buckets.entries()) {
    const count = bucket.count - (before.buckets[i]?.count ?? 0);
    if (count >= q * total) return bucket.le * 1000;
  }
  return Number.POSITIVE_INFINITY;
}

export function heartbeatWindow(
  before: HeartbeatCounters,
  after: HeartbeatCounters,
  sent: number,
  seconds: number,
): HeartbeatWindow {
  const applied = after.applied - before.applied;
  return {
    seconds: round2(seconds),
    received: after.received - before.received,
    applied,
    sent,
    appliedPctOfSent: sent > 0 ? round2((applied / sent) * 100) : Number.NaN,
    lagMeanMs: applied > 0 ? round2(((after.lagSumSec - before.lagSumSec) / applied) * 1000) : 0,
    lagP50Ms: quantileMs(before, after, 0.5),
    lagP99Ms: quantileMs(before, after, 0.99),
  };
}

/**
 * Kept up: applied about as many heartbeats as were sent (5 % for the
 * window's edges: the sims report their count every 50 ms, a heartbeat takes
 * a while on its way) and 99 % of them within one heartbeat period.
 */
export const MIN_APPLIED_PCT = 95;

export function keptUp(window: HeartbeatWindow, heartbeatMs: number): boolean {
  return window.appliedPctOfSent >= MIN_APPLIED_PCT && window.lagP99Ms <= heartbeatMs;
}
