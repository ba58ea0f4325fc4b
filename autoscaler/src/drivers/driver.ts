/**
 * What the autoscaler needs from whatever runs workers: how many replicas a
 * pool has, and a way to change that. Drivers: `local` (worker processes on
 * this machine) and `swarm` (a Docker Swarm service per pool).
 */
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { PoolSpec } from '../config.ts';

export interface ScaleDriver {
  readonly name: string;
  /** Replicas the pool runs or has been told to run (not only those online yet). */
  replicas(pool: PoolSpec): Promise<number>;
  /**
   * Makes the pool run `replicas` workers. `workers` is the master's view of
   * the pool's workers, so a driver that chooses whom to stop can stop idle
   * ones first. Stopped workers drain: they finish their tasks, then exit.
   */
  scale(pool: PoolSpec, replicas: number, workers: readonly WorkerView[]): Promise<void>;
  close(): Promise<void>;
}
