/**
 * Fleet control over REST (admin only): drain, resume, stop, restart and
 * reconfigure one worker, cordon a kind or labels, stop all dispatch at once.
 * Each worker command waits for the worker's acknowledgement (its status).
 */
import { z } from 'zod';
import { liveConfigSchema, workerLabelsSchema } from './task.ts';
import { workerIdSchema, workerKindSchema, workerViewSchema } from './worker.ts';

/** How long a worker command waits for the worker's acknowledgement, at most. */
export const CONTROL_ACK_TIMEOUT_MS = 5_000;

/** `PATCH /api/workers/{id}/config` body: the settings to change (at least one). */
export const workerConfigRequestSchema = liveConfigSchema;

/** Which workers a cordon covers: all of the kind, carrying every label (both when both given). */
export const workerSelectorSchema = z
  .object({
    kind: workerKindSchema.optional(),
    labels: workerLabelsSchema.optional(),
  })
  .strict()
  .refine((s) => s.kind !== undefined || (s.labels && Object.keys(s.labels).length > 0), {
    message: 'name a kind or at least one label',
  });
export type WorkerSelector = z.infer<typeof workerSelectorSchema>;

/** A worker command's answer: the worker acknowledged it; the view shows its state now. */
export const workerCommandResponseSchema = z.object({
  workerId: workerIdSchema,
  command: z.enum(['drain', 'resume', 'stop', 'restart', 'config']),
  worker: workerViewSchema.optional(),
});
export type WorkerCommandResponse = z.infer<typeof workerCommandResponseSchema>;

/** One worker's answer within a cordon: acknowledged, or why not. */
export const cordonOutcomeSchema = z.object({
  workerId: workerIdSchema,
  ok: z.boolean(),
  error: z.string().optional(),
});

/** `POST /api/workers/drain` (cordon) and `POST /api/workers/resume` (uncordon) → 200. */
export const cordonResponseSchema = z.object({
  selector: workerSelectorSchema,
  workers: z.array(cordonOutcomeSchema),
});
export type CordonResponse = z.infer<typeof cordonResponseSchema>;

/** `POST /api/fleet/stop` body: what becomes of the tasks running now. */
export const fleetStopRequestSchema = z
  .object({ running: z.enum(['cancel', 'keep']).default('keep') })
  .strict();
export type FleetStopRequest = z.infer<typeof fleetStopRequestSchema>;

/** `GET /api/fleet`, and the answer of every fleet command. */
export const fleetStateSchema = z.object({
  dispatch: z.enum(['running', 'stopped']),
  /** While stopped: since when, by whom, and what became of the running tasks. */
  stopped: z
    .object({
      at: z.number().int(),
      by: z.string().optional(),
      running: z.enum(['cancel', 'keep']),
      /** Running tasks cancelled by the stop. */
      cancelled: z.number().int().nonnegative(),
    })
    .optional(),
  /** Workers an operator drained (alone or by a cordon); they get no new work. */
  drained: z.array(
    z.object({ workerId: workerIdSchema, at: z.number().int(), by: z.string().optional() }),
  ),
  /** Cordons in force: workers matching them, now or when they join, are drained. */
  cordons: z.array(
    z.object({ selector: workerSelectorSchema, at: z.number().int(), by: z.string().optional() }),
  ),
});
export type FleetState = z.infer<typeof fleetStateSchema>;
