/**
 * The messages `flota master` sends its parent over Node's IPC channel when
 * `flota up` supervises it: where it listens, once it is ready; then, while it
 * runs, what the supervisor's status line shows.
 */
import { z } from 'zod';

export const masterReadySchema = z.object({
  type: z.literal('flota:master-ready'),
  httpUrl: z.string(),
  grpcPort: z.number().int(),
  mqttUrl: z.string(),
  /** An admin API token the supervisor may use (to issue its local workers' credentials). */
  adminToken: z.string().optional(),
});
export type MasterReady = z.infer<typeof masterReadySchema>;

/**
 * Sent instead, just before it exits, when start-up fails for a reason a
 * person can fix: the supervisor prints it (the master prints nothing).
 */
export const masterFailedSchema = z.object({
  type: z.literal('flota:master-failed'),
  /** The FlotaError's code, e.g. `port_in_use`, `config_invalid`. */
  code: z.string(),
  /** What failed and why. */
  message: z.string(),
  /** What to do about it. */
  hint: z.string().optional(),
});
export type MasterFailed = z.infer<typeof masterFailedSchema>;

/**
 * What `flota up`'s live status line shows, sent by the master to its parent
 * every MASTER_STATUS_INTERVAL_MS while it runs. Counts since this master started.
 */
export const masterStatusSchema = z.object({
  type: z.literal('flota:master-status'),
  workersOnline: z.number().int().nonnegative(),
  tasksCompleted: z.number().int().nonnegative(),
  tasksFailed: z.number().int().nonnegative(),
  /** Jobs waiting for a worker (waiting, prioritized or delayed), over every queue. */
  queued: z.number().int().nonnegative(),
  /** Jobs a worker holds. */
  running: z.number().int().nonnegative(),
});
export type MasterStatus = z.infer<typeof masterStatusSchema>;

export const MASTER_STATUS_INTERVAL_MS = 500;
