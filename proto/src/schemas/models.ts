/**
 * The fleet's models as the master's registry sees them (`GET /api/models`,
 * and the `flota` field of each `GET /v1/models` entry): who serves each
 * model, who holds it in memory, how much room is left, and what the
 * workers' catalogs say of it.
 */
import { z } from 'zod';
import {
  type ProviderName,
  providerNameSchema,
  workerIdSchema,
  workerKindSchema,
} from './worker.ts';

/**
 * Providers whose models run on the worker itself and must be loaded into
 * its memory before they answer. The others (remote APIs, echo) count as
 * always ready.
 */
export const LOCAL_PROVIDERS: readonly ProviderName[] = ['llama'];

/** Worker ids listed per model and state at most (the first by id); the counts cover all. */
export const MAX_MODEL_WORKER_IDS = 100;

const count = z.number().int().nonnegative();
const byKind = z.object({ cpu: count, gpu: count });

/** One model, over the online workers that serve it. */
export const modelEntrySchema = z.object({
  name: z.string(),
  /** The providers that run it (a worker's catalog names one per model). */
  providers: z.array(providerNameSchema),
  /** The kinds of worker that serve it, `cpu` before `gpu`. */
  kinds: z.array(workerKindSchema),
  /** Some worker runs it locally: it answers at once only where it is loaded. */
  local: z.boolean(),
  /** Online workers that serve it, by kind. */
  workers: byKind,
  /** The first MAX_MODEL_WORKER_IDS of them, by id. */
  workerIds: z.array(workerIdSchema),
  /** Online workers that hold it in memory now (local models only), by kind. */
  loaded: byKind,
  /** The first MAX_MODEL_WORKER_IDS of them, by id. */
  loadedIds: z.array(workerIdSchema),
  /** Free slots of the online, non-draining workers that serve it, as the master counts them. */
  freeSlots: count,
  /** From the workers' catalogs (the first worker by id that states it). */
  sizeBytes: count.optional(),
  quantization: z.string().optional(),
  contextLength: z.number().int().positive().optional(),
  /** Mean memory one loaded copy takes, MB, over the workers holding it. */
  memMb: z.number().nonnegative().optional(),
  /** Mean of the last load time, ms, over the workers holding it. */
  loadMs: z.number().nonnegative().optional(),
});
export type ModelEntry = z.infer<typeof modelEntrySchema>;

/** `GET /api/models`: every model some online worker serves, by name. */
export const modelsResponseSchema = z.object({ models: z.array(modelEntrySchema) });
export type ModelsResponse = z.infer<typeof modelsResponseSchema>;
