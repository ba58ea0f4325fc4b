import { z } from 'zod';
import { workerViewSchema } from './worker.ts';

const count = z.number().int().nonnegative();

/** `GET /api/metrics`: the facts of `GET /metrics`, as JSON. */
export const metricsSnapshotSchema = z.object({
  tasks: z.object({ completed: count, failed: count }),
  workers: z.object({ online: count, offline: count, slots: count, active: count }),
  /** Job counts per queue name (see queues.ts) and BullMQ state: waiting, prioritized, delayed, active, … */
  queues: z.record(z.string(), z.record(z.string(), count)),
  resultsRejected: z.record(z.string(), count),
  /** Result cache lookups of queued tasks (none while CACHE_TTL_S is 0). */
  cache: z.object({ enabled: z.boolean(), hits: count, misses: count }),
});
export type MetricsSnapshot = z.infer<typeof metricsSnapshotSchema>;

/** `GET /api/workers`. */
export const workersResponseSchema = z.object({
  workers: z.array(workerViewSchema),
  /** Every model some online worker serves, sorted. */
  models: z.array(z.string()),
});
export type WorkersResponse = z.infer<typeof workersResponseSchema>;
