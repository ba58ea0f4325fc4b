/**
 * How well the registry keeps up with heartbeats: how many arrived, how many
 * it applied, and how late each applied one was (its `ts`, stamped by the
 * worker as it sends, to the moment the record was updated). A master that
 * falls behind shows it here first: the lag grows past the heartbeat period
 * while the counts still match. Plain counters, read at scrape time
 * (`flota_heartbeats_total`, `flota_heartbeat_lag_seconds`), so a heartbeat
 * costs a few additions. The lag needs the worker's clock to agree with the
 * master's (same host, or NTP); a worker ahead of the master counts as 0.
 */

/** Upper bounds of the lag buckets, ms (a last bucket takes the rest). */
export const HEARTBEAT_LAG_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

export interface HeartbeatCounts {
  /** Heartbeat messages the registry was handed. */
  received: number;
  /** …of which updated an online (or revived) worker's record. */
  applied: number;
  /** Sum of the applied heartbeats' lag, ms. */
  lagSumMs: number;
  /** Applied heartbeats per lag bucket (not cumulative); the last one past every bound. */
  lagBuckets: readonly number[];
}

export class HeartbeatMeter {
  private received = 0;
  private applied = 0;
  private lagSumMs = 0;
  private readonly lagBuckets = new Array<number>(HEARTBEAT_LAG_BUCKETS_MS.length + 1).fill(0);

  /** A heartbeat message arrived (valid or not). */
  receive(): void {
    this.received += 1;
  }

  /** A heartbeat stamped `sentAt` (the worker's clock) was applied at `now`. */
  apply(sentAt: number, now: number): void {
    const lag = Math.max(0, now - sentAt);
    this.applied += 1;
    this.lagSumMs += lag;
    let i = 0;
    while (i < HEARTBEAT_LAG_BUCKETS_MS.length && lag > (HEARTBEAT_LAG_BUCKETS_MS[i] as number))
      i++;
    this.lagBuckets[i] = (this.lagBuckets[i] as number) + 1;
  }

  counts(): HeartbeatCounts {
    return {
      received: this.received,
      applied: this.applied,
      lagSumMs: this.lagSumMs,
      lagBuckets: [...this.lagBuckets],
    };
  }
}
