import { z } from 'zod';
import { apiErrorSchema } from '../http-api.ts';
import { workerIdSchema, workerKindSchema } from './worker.ts';

/** Largest prompt the master accepts, in characters. */
export const MAX_PROMPT_CHARS = 100_000;

/**
 * Longest half-streamed answer a new attempt continues, in characters; a
 * longer one starts over (the assignment would outgrow its bound).
 */
export const MAX_CONTINUATION_CHARS = MAX_PROMPT_CHARS;

/** A lone UTF-16 surrogate: half a character, with no UTF-8 form (JSON can still carry one). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True for text every store and wire keeps as it is: no NUL and no lone surrogate. */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

/**
 * Text that goes into the queue store: PostgreSQL refuses NUL, and a lone
 * surrogate does not survive UTF-8, so either would fail (or change) the
 * task later; it is refused up front with a reason instead.
 */
export const storableText = <T extends z.ZodString>(schema: T) =>
  schema.refine(isStorableText, {
    message: 'contains a NUL character or a lone UTF-16 surrogate: send valid Unicode text',
  });

export const taskIdSchema = z.string().min(1).max(128);
export const modelSchema = storableText(z.string().min(1).max(200));

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: storableText(z.string().max(MAX_PROMPT_CHARS)),
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const generationParamsSchema = z
  .object({
    temperature: z.number().min(0).max(2).optional(),
    maxTokens: z.number().int().min(1).max(1_000_000).optional(),
    /** The answer ends before the first of these (not included). */
    stop: z
      .array(storableText(z.string().min(1).max(256)))
      .max(4)
      .optional(),
  })
  .strict();
export type GenerationParams = z.infer<typeof generationParamsSchema>;

/** Most labels one task may require. */
export const MAX_REQUIRED_LABELS = 16;

/** Label keys that name Object.prototype's machinery; a record silently drops `__proto__`. */
export const RESERVED_LABEL_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** Refuses reserved keys before the record is parsed (z.record skips `__proto__` unseen). */
function refuseReservedKeys(value: unknown, ctx: z.RefinementCtx): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const key of Object.keys(value)) {
      if (RESERVED_LABEL_KEYS.includes(key)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `label key ${JSON.stringify(key)} is reserved: choose another name`,
        });
      }
    }
  }
  return value;
}

export const requirementsSchema = z
  .object({
    gpu: z.boolean().optional(),
    /** Only workers carrying every one of these labels, with the same value, serve the task. */
    labels: z
      .preprocess(
        refuseReservedKeys,
        z
          .record(storableText(z.string().min(1).max(64)), storableText(z.string().max(256)))
          .refine((labels) => Object.keys(labels).length <= MAX_REQUIRED_LABELS, {
            message: `at most ${MAX_REQUIRED_LABELS} labels`,
          }),
      )
      .optional(),
  })
  .strict();
export type Requirements = z.infer<typeof requirementsSchema>;

/** Bounds of a per-task timeout. */
export const MIN_TASK_TIMEOUT_MS = 1_000;
export const MAX_TASK_TIMEOUT_MS = 24 * 3_600_000;

/** Prior turns a submission may carry, oldest first. */
export const MAX_HISTORY_MESSAGES = 50;
/** Characters across prompt and history together. */
export const MAX_CONVERSATION_CHARS = 4 * MAX_PROMPT_CHARS;

/** The fields of a submission; use `submitTaskSchema`, which also checks the size budget. */
export const submitTaskFields = z
  .object({
    prompt: storableText(
      z.string().trim().min(1, 'prompt must not be empty').max(MAX_PROMPT_CHARS),
    ),
    /** Earlier turns of the conversation, oldest first; the new question is `prompt`. */
    messages: z.array(chatMessageSchema).max(MAX_HISTORY_MESSAGES).optional(),
    model: modelSchema.optional(),
    priority: z.number().int().min(0).max(1000).optional(),
    requires: requirementsSchema.optional(),
    params: generationParamsSchema.optional(),
    /** The caller's own provider key; held in master memory only, never stored or logged. */
    apiKey: z.string().min(1).max(512).optional(),
    /** Submit→finish budget for this task (queued time included); default TASK_TIMEOUT_MS. */
    timeoutMs: z.number().int().min(MIN_TASK_TIMEOUT_MS).max(MAX_TASK_TIMEOUT_MS).optional(),
    /**
     * Default true: an identical earlier request of the same tenant may answer
     * this one from the result cache (when the master's CACHE_TTL_S > 0), and
     * this answer is kept for later ones. false: always run it, keep nothing.
     */
    cache: z.boolean().optional(),
  })
  .strict();

/** Refinement shared by every submission schema: the whole conversation stays within budget. */
export function conversationFits(
  task: { prompt: string; messages?: ChatMessage[] },
  ctx: z.RefinementCtx,
): void {
  const chars =
    task.prompt.length + (task.messages ?? []).reduce((sum, m) => sum + m.content.length, 0);
  if (chars > MAX_CONVERSATION_CHARS) {
    ctx.addIssue({
      code: 'custom',
      path: ['messages'],
      message: `prompt and messages together exceed ${MAX_CONVERSATION_CHARS} characters`,
    });
  }
}

/** Body of `POST /api/tasks` (and the core of the Socket.IO `task:submit` event). */
export const submitTaskSchema = submitTaskFields.superRefine(conversationFits);
export type SubmitTask = z.infer<typeof submitTaskSchema>;

/** `POST /api/tasks` → 202 (its `Location` is `/api/tasks/{id}`). */
export const submitTaskResponseSchema = z.object({ id: taskIdSchema });
export type SubmitTaskResponse = z.infer<typeof submitTaskResponseSchema>;

/** Tasks one `POST /api/tasks/batch` may carry. */
export const MAX_BATCH_TASKS = 500;
/** Largest `POST /api/tasks/batch` body (every other /api body: 1 MB). */
export const MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024;

/**
 * Body of `POST /api/tasks/batch`: many submissions in one request, each as
 * `POST /api/tasks` takes it. One invalid task refuses the whole batch (400,
 * its index in the path), so nothing is half added.
 */
export const submitTaskBatchSchema = z
  .object({ tasks: z.array(submitTaskSchema).min(1).max(MAX_BATCH_TASKS) })
  .strict();
export type SubmitTaskBatch = z.infer<typeof submitTaskBatchSchema>;

/**
 * `POST /api/tasks/batch` → 202: one entry per submitted task, in order —
 * its id, or why it was not queued (an error body as `/api` answers it, e.g.
 * `unknown_model`, `queue_full`, `unavailable`: a retry with the same
 * Idempotency-Key adds only what is missing).
 */
export const submitTaskBatchResponseSchema = z.object({
  tasks: z.array(z.union([submitTaskResponseSchema, apiErrorSchema])),
});
export type SubmitTaskBatchResponse = z.infer<typeof submitTaskBatchResponseSchema>;

/** Body of `PATCH /api/tasks/{id}`: the new priority, with the same bounds as a submission's. */
export const reprioritizeTaskSchema = z
  .object({ priority: submitTaskFields.shape.priority.unwrap() })
  .strict();
export type ReprioritizeTask = z.infer<typeof reprioritizeTaskSchema>;

/** What the master sends on `workers/{id}/tasks` (QoS 1). */
export const assignmentSchema = z.object({
  taskId: taskIdSchema,
  attempt: z.number().int().min(1),
  /** Fencing token: results must echo it; a new attempt gets a new lease. */
  lease: z.string().min(1).max(128),
  model: modelSchema,
  prompt: z.string().max(MAX_PROMPT_CHARS),
  messages: z.array(chatMessageSchema).max(MAX_HISTORY_MESSAGES).optional(),
  params: generationParamsSchema.default({}),
  apiKey: z.string().max(512).optional(),
  /** Unix ms after which the worker should give up. */
  deadline: z.number().int().nonnegative(),
  queuedAt: z.number().int().nonnegative(),
  /**
   * The text an earlier attempt streamed before it died. Sent only to a
   * worker whose status says `continuation: true`: it generates what follows
   * (its chunks and its result's text carry the new text only).
   */
  continueFrom: z.string().min(1).max(MAX_CONTINUATION_CHARS).optional(),
});
export type Assignment = z.infer<typeof assignmentSchema>;

/**
 * Names one control so the worker's acknowledgement (its status's `ack`)
 * can be matched to it. Controls without one are not acknowledged.
 */
export const controlIdSchema = z.string().min(1).max(64);

/** Worker labels as a live config sets them: the same keys and values a task may require. */
export const workerLabelsSchema = requirementsSchema.shape.labels.unwrap();

/**
 * Settings a worker changes while it runs (`config` control, `PATCH
 * /api/workers/{id}/config`); absent fields stay as they are. The bounds
 * are those of the worker's online status.
 */
export const liveConfigSchema = z
  .object({
    slots: z.number().int().min(1).max(1024).optional(),
    models: z.array(modelSchema).min(1).max(256).optional(),
    weight: z.number().int().min(1).max(1000).optional(),
    labels: workerLabelsSchema.optional(),
  })
  .strict()
  .refine((config) => Object.values(config).some((value) => value !== undefined), {
    message: 'name at least one of slots, models, weight, labels',
  });
export type LiveConfig = z.infer<typeof liveConfigSchema>;

/** What the master sends on `workers/{id}/control`. */
export const controlSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('cancel'),
    taskId: taskIdSchema,
    attempt: z.number().int().min(1).optional(),
  }),
  /** Finish what runs, take nothing new (the status and heartbeats say `draining`). */
  z.object({ type: z.literal('drain'), id: controlIdSchema.optional() }),
  z.object({ type: z.literal('resume'), id: controlIdSchema.optional() }),
  /**
   * Graceful stop: no new work, running tasks finish (up to the worker's
   * SHUTDOWN_GRACE_MS), then it leaves. `restart`: it exits with
   * RESTART_EXIT_CODE afterwards, for its supervisor to start it again.
   */
  z.object({
    type: z.literal('shutdown'),
    id: controlIdSchema.optional(),
    restart: z.boolean().optional(),
  }),
  /** Live settings; the worker applies them or refuses them whole (its `ack` says which). */
  z.object({ type: z.literal('config'), id: controlIdSchema, config: liveConfigSchema }),
]);
export type Control = z.infer<typeof controlSchema>;

/** The control that stops one attempt of a task on the worker running it. */
export const cancelControl = (attempt: { taskId: string; attempt: number }): Control => ({
  type: 'cancel',
  taskId: attempt.taskId,
  attempt: attempt.attempt,
});

export const taskStateSchema = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);
export type TaskState = z.infer<typeof taskStateSchema>;

export const taskTimingsSchema = z.object({
  submittedAt: z.number(),
  assignedAt: z.number().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  /** submitted → assigned */
  queueMs: z.number().optional(),
  /** provider time as the worker measured it */
  processingMs: z.number().optional(),
  /** submitted → result committed */
  totalMs: z.number().optional(),
  /** When the master received the answer's first chunk (streamed answers only). */
  firstChunkAt: z.number().optional(),
  /** submitted → first chunk: the time to first token as a user waits for it */
  ttftMs: z.number().optional(),
});
export type TaskTimings = z.infer<typeof taskTimingsSchema>;

/** `GET /api/tasks/:id`, and the payload of terminal Socket.IO events. */
export const taskViewSchema = z.object({
  id: taskIdSchema,
  state: taskStateSchema,
  model: modelSchema,
  priority: z.number().int(),
  requires: requirementsSchema,
  attempt: z.number().int().min(0),
  result: z.string().optional(),
  error: z.string().optional(),
  workerId: workerIdSchema.optional(),
  workerKind: workerKindSchema.optional(),
  timings: taskTimingsSchema,
  /** Present when the answer came from the result cache (no worker ran it); cachedAt: when stored. */
  cache: z.object({ hit: z.literal(true), cachedAt: z.number() }).optional(),
  /**
   * Token counts of a completed task, as its provider reported them, or
   * counted by the worker where the provider gave none (`estimated`).
   */
  usage: z
    .object({
      inputTokens: z.number().int(),
      outputTokens: z.number().int(),
      estimated: z.literal(true).optional(),
    })
    .optional(),
});
export type TaskView = z.infer<typeof taskViewSchema>;
