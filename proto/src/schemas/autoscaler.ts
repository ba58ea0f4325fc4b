/** The autoscaler's `GET /status`: every pool's last observation and decision. */
import { z } from 'zod';
import { workerKindSchema } from './worker.ts';

const count = z.number().int().nonnegative();

export const scaleActions = ['up', 'down', 'hold'] as const;
export type ScaleAction = (typeof scaleActions)[number];

/** Why a round decided what it did; also the `reason` label of flota_autoscaler_decisions_total. */
export const scaleReasons = [
  'below-min',
  'above-max',
  'backlog',
  'busy',
  'idle',
  'steady',
  'cooldown',
  'draining',
  'stabilising',
  'tasks-waiting',
] as const;
export type ScaleReason = (typeof scaleReasons)[number];

export const poolObservationSchema = z.object({
  /** Replicas the driver runs or has been told to run. */
  replicas: count,
  /** Tasks waiting in the queues this pool serves (waiting, prioritised, in backoff). */
  backlog: count,
  /** Tasks running on the pool's online workers. */
  active: count,
  /** Slots of the pool's online workers. */
  slots: count,
  /** The pool's online workers. */
  online: count,
});
export type PoolObservation = z.infer<typeof poolObservationSchema>;

export const scaleDecisionViewSchema = z.object({
  action: z.enum(scaleActions),
  reason: z.enum(scaleReasons),
  /** Replicas before the decision. */
  from: count,
  /** Replicas after it (= from when holding). */
  replicas: count,
  /** What the load alone asks for, within min and max, before cooldowns and steps. */
  wanted: count,
  /** Busy share of the pool's slots (1 when work waits and there are no slots). */
  utilisation: z.number().nonnegative(),
});
export type ScaleDecisionView = z.infer<typeof scaleDecisionViewSchema>;

export const poolStatusSchema = z.object({
  pool: z.string(),
  capability: workerKindSchema,
  min: count,
  max: count,
  /** When the last round looked at this pool (Unix ms). */
  at: z.number().optional(),
  observation: poolObservationSchema.optional(),
  decision: scaleDecisionViewSchema.optional(),
  /** Why the last round decided nothing, if it did not. */
  error: z.string().optional(),
});
export type PoolStatus = z.infer<typeof poolStatusSchema>;

export const autoscalerStatusSchema = z.object({ pools: z.array(poolStatusSchema) });
export type AutoscalerStatus = z.infer<typeof autoscalerStatusSchema>;
