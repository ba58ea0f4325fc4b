/**
 * `flota conformance` options, with their defaults, validated once. A bad
 * value is reported with the option's name, as the rest of the CLI does.
 */
import { z } from 'zod';
import { workerIdSchema } from '../../proto/src/schemas/worker.ts';

export const conformanceOptionsSchema = z.object({
  /** The worker command and its arguments (after `--`). */
  command: z
    .array(z.string().min(1))
    .min(1, 'give the worker command after --, e.g. -- node bin/flota.mjs worker'),
  /** The id the worker under test runs as. */
  workerId: workerIdSchema.default('conformance-1'),
  /** QUEUE_URL of the kit's master; unset: a local redis-server, else the embedded PostgreSQL. */
  queueUrl: z
    .string()
    .regex(
      /^(redis|rediss|postgres|postgresql):\/\/\S+$/,
      '--queue-url: expected redis:// or postgres://',
    )
    .optional(),
  /** SLOTS the worker gets; the slot check needs at least 2. */
  slots: z.coerce.number().int().min(2, '--slots must be at least 2').max(16).default(2),
  /** HEARTBEAT_MS the worker gets. */
  heartbeatMs: z.coerce
    .number()
    .int()
    .min(50, '--heartbeat-ms must be at least 50')
    .max(1_000, '--heartbeat-ms must be at most 1000 (the checks wait a few heartbeats each)')
    .default(300),
  /** SHUTDOWN_GRACE_MS the worker gets. */
  shutdownGraceMs: z.coerce.number().int().min(0).max(60_000).default(5_000),
  /** Only these check ids (or groups, e.g. `registration`); unset: every check. */
  checks: z.array(z.string().min(1)).optional(),
  json: z.boolean().default(false),
});
export type ConformanceOptions = z.output<typeof conformanceOptionsSchema>;
