import { z } from 'zod';
import { TOPIC_ID_PATTERN } from '../topics.ts';
import { WORKER_LEAVE_REASONS } from './codes.ts';

export const workerIdSchema = z
  .string()
  .regex(TOPIC_ID_PATTERN, 'worker id: letters, digits, . _ : - (max 128), starting alphanumeric');
export const workerKindSchema = z.enum(['cpu', 'gpu']);
export type WorkerKind = z.infer<typeof workerKindSchema>;

export const providerNameSchema = z.enum(['echo', 'gemini', 'openai', 'llama']);
export type ProviderName = z.infer<typeof providerNameSchema>;

const modelNameSchema = z.string().min(1).max(200);

/** A model a worker can serve, as its online status advertises it. */
export const modelInfoSchema = z.object({
  name: modelNameSchema,
  provider: providerNameSchema,
  /** Size of the model's file, for local models. */
  sizeBytes: z.number().int().nonnegative().optional(),
  /** Quantisation as the file names it (Q4_K_M, F16, …), for local models. */
  quantization: z.string().max(64).optional(),
  /** Context length in tokens the model was trained for, when known. */
  contextLength: z.number().int().positive().optional(),
});
export type ModelInfo = z.infer<typeof modelInfoSchema>;

/** A local model held in a worker's memory now, as its heartbeat reports it. */
export const loadedModelSchema = z.object({
  name: modelNameSchema,
  /** Memory the loaded model takes (weights and context), in MB. */
  memMb: z.number().nonnegative(),
  /** How long its last load took, in ms. */
  loadMs: z.number().nonnegative(),
  /** Unix ms of the last task that used it. */
  lastUsedAt: z.number().int().nonnegative(),
});
export type LoadedModel = z.infer<typeof loadedModelSchema>;

/**
 * A worker's answer to a control that carried an `id`, in the status it
 * republishes at once: applied (`ok`), or refused with the reason.
 */
export const controlAckSchema = z.object({
  id: z.string().min(1).max(64),
  ok: z.boolean(),
  error: z.string().max(1_000).optional(),
});
export type ControlAck = z.infer<typeof controlAckSchema>;

/**
 * Exit status of a worker the master told to restart (`shutdown` control
 * with `restart`): non-zero, so a supervisor that restarts on failure
 * (Swarm's `on-failure`, systemd's `Restart=on-failure`) starts it again.
 */
export const RESTART_EXIT_CODE = 75;

/** Retained on `workers/{id}/status` while the worker is up. */
export const workerOnlineSchema = z.object({
  state: z.literal('online'),
  id: workerIdSchema,
  kind: workerKindSchema,
  models: z.array(modelNameSchema).min(1).max(256),
  providers: z.array(providerNameSchema).min(1),
  /** What the worker knows of each model it serves (local models: size, quantisation, context). */
  catalog: z.array(modelInfoSchema).max(256).optional(),
  /**
   * True when the worker can continue a half-streamed answer: given the text
   * an earlier attempt streamed, it generates only what follows.
   */
  continuation: z.boolean().optional(),
  slots: z.number().int().min(1).max(1024),
  labels: z.record(z.string().max(64), z.string().max(256)).default({}),
  /** Share of the work under DISPATCH_POLICY=weighted-round-robin (3 vs 1 → 75 % vs 25 %). */
  weight: z.number().int().min(1).max(1000).default(1),
  version: z.string().max(64),
  host: z.string().max(256),
  /** How often this worker heartbeats; the master declares it dead after 3 missed. */
  heartbeatMs: z.number().int().min(50).max(60_000).default(1_000),
  /** Unix ms. A new value means the worker restarted (its old leases are gone). */
  startedAt: z.number().int().nonnegative(),
  /** Taking no new work (drained, or stopping); heartbeats say it too. */
  draining: z.boolean().optional(),
  /** The answer to the last control that carried an id. */
  ack: controlAckSchema.optional(),
});
export type WorkerOnline = z.infer<typeof workerOnlineSchema>;

/** The Last Will (and the clean-shutdown message) on `workers/{id}/status`. */
export const workerOfflineSchema = z.object({
  state: z.literal('offline'),
  id: workerIdSchema,
  reason: z.enum(WORKER_LEAVE_REASONS).default('lost'),
});
export type WorkerOffline = z.infer<typeof workerOfflineSchema>;

export const workerStatusSchema = z.discriminatedUnion('state', [
  workerOnlineSchema,
  workerOfflineSchema,
]);
export type WorkerStatus = z.infer<typeof workerStatusSchema>;

export const gpuMetricsSchema = z.object({
  index: z.number().int().nonnegative(),
  name: z.string().max(200),
  utilPct: z.number().min(0).max(100),
  memUsedMb: z.number().nonnegative(),
  memTotalMb: z.number().nonnegative(),
});
export type GpuMetrics = z.infer<typeof gpuMetricsSchema>;

export const activeLeaseSchema = z.object({
  taskId: z.string().min(1).max(128),
  attempt: z.number().int().min(1),
  /** The assignment's lease; lets a restarted master adopt the running attempt. */
  lease: z.string().min(1).max(128).optional(),
});
export type ActiveLease = z.infer<typeof activeLeaseSchema>;

/** Sent every second on `workers/{id}/heartbeat`. */
export const heartbeatSchema = z.object({
  id: workerIdSchema,
  ts: z.number().int().nonnegative(),
  cpuPct: z.number().min(0).max(100),
  mem: z.object({
    usedPct: z.number().min(0).max(100),
    totalMb: z.number().nonnegative(),
    rssMb: z.number().nonnegative(),
  }),
  gpus: z.array(gpuMetricsSchema).max(64).default([]),
  freeSlots: z.number().int().nonnegative(),
  active: z.array(activeLeaseSchema).max(1024).default([]),
  draining: z.boolean().default(false),
  /** Local models in memory now (llama); empty for remote providers. */
  loaded: z.array(loadedModelSchema).max(256).optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** One worker as the master reports it (`GET /api/workers`, Socket.IO `workers:update`). */
export const workerViewSchema = z.object({
  id: workerIdSchema,
  kind: workerKindSchema,
  state: z.enum(['online', 'offline']),
  models: z.array(z.string()),
  providers: z.array(providerNameSchema),
  labels: z.record(z.string(), z.string()),
  slots: z.number().int(),
  /** Share of the work under DISPATCH_POLICY=weighted-round-robin. */
  weight: z.number().int().optional(),
  /** Taking no new work: the worker says it drains, or an operator drained or cordoned it. */
  draining: z.boolean().optional(),
  /** Tasks the master has assigned to this worker and not yet seen finish. */
  active: z.number().int(),
  host: z.string(),
  version: z.string(),
  lastSeen: z.number(),
  cpuPct: z.number().optional(),
  memPct: z.number().optional(),
  gpus: z.array(gpuMetricsSchema),
  /** Local models held in memory now, by name (its last heartbeat); absent for remote providers. */
  loaded: z.array(z.string()).optional(),
});
export type WorkerView = z.infer<typeof workerViewSchema>;
