/**
 * The OpenAI-compatible API (`/v1`): the request flota accepts on
 * `POST /v1/chat/completions`, the answers it gives (OpenAI's shapes, so the
 * official SDKs and tools work unchanged), and flota's own options, which a
 * client sends as a `flota` body field or as `x-flota-*` headers.
 */
import { z } from 'zod';
import { modelEntrySchema } from './models.ts';
import {
  MAX_HISTORY_MESSAGES,
  modelSchema,
  requirementsSchema,
  storableText,
  submitTaskFields,
} from './task.ts';
import { workerKindSchema } from './worker.ts';

/** Stop sequences per request, as OpenAI allows. */
export const MAX_STOP_SEQUENCES = 4;
/** Text parts in one message's content. */
export const MAX_CONTENT_PARTS = 64;

const textPartSchema = z.object({ type: z.literal('text'), text: z.string() }).strict();

/** A message's `content`: a string, or an array of text parts (joined). Images and audio are refused. */
const contentSchema = z.union([
  z.string(),
  z
    .array(textPartSchema, {
      error: 'content parts: only { type: "text", text } is supported',
    })
    .min(1)
    .max(MAX_CONTENT_PARTS),
]);

export const openAiMessageSchema = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant']),
    content: contentSchema,
    name: z.string().max(64).optional(),
  })
  .strict();
export type OpenAiMessage = z.infer<typeof openAiMessageSchema>;

/** flota's own options for one request: the same rules as a `POST /api/tasks` body. */
export const flotaOptionsSchema = z
  .object({
    priority: submitTaskFields.shape.priority,
    requires: requirementsSchema.optional(),
    timeoutMs: submitTaskFields.shape.timeoutMs,
    cache: z.boolean().optional(),
  })
  .strict();
export type FlotaOptions = z.infer<typeof flotaOptionsSchema>;

/** Request headers that carry flota's options (the body's `flota` field wins over them). */
export const FLOTA_OPTION_HEADERS = {
  priority: 'x-flota-priority',
  gpu: 'x-flota-gpu',
  /** `key=value,key=value` */
  labels: 'x-flota-labels',
  timeoutMs: 'x-flota-timeout-ms',
  /** `false` (or `0`): run it, keep nothing (`cache: false`). */
  cache: 'x-flota-cache',
} as const;

/**
 * `POST /v1/chat/completions`. Unknown fields are refused with their name, so
 * a client learns at once that flota does not do, say, tools or n > 1.
 */
export const chatCompletionRequestSchema = z
  .object({
    model: modelSchema,
    messages: z
      .array(openAiMessageSchema)
      .min(1, 'messages must not be empty')
      .max(MAX_HISTORY_MESSAGES + 1),
    max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
    max_completion_tokens: z.number().int().min(1).max(1_000_000).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    stop: z
      .union([
        storableText(z.string().min(1).max(256)),
        z.array(storableText(z.string().min(1).max(256))).max(MAX_STOP_SEQUENCES),
      ])
      .nullish(),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullish(),
    n: z.literal(1, { error: 'n: flota gives one choice per request' }).nullish(),
    /** The caller's own name for its end user; accepted and not used. */
    user: z.string().max(256).optional(),
    flota: flotaOptionsSchema.optional(),
  })
  .strict();
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** The text of a message's content. */
export const contentText = (content: OpenAiMessage['content']): string =>
  typeof content === 'string' ? content : content.map((part) => part.text).join('');

/** OpenAI's token counts. */
export const openAiUsageSchema = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  /** flota's: the provider gave no counts, so the worker counted them with its own tokenizer. */
  estimated: z.literal(true).optional(),
});
export type OpenAiUsage = z.infer<typeof openAiUsageSchema>;

/** How a choice ended: `stop` (the model finished or hit a stop sequence). */
export const finishReasonSchema = z.enum(['stop', 'length']);
export type FinishReason = z.infer<typeof finishReasonSchema>;

/** What flota adds to each answer: where and how the task ran. */
export const flotaAnswerInfoSchema = z.object({
  taskId: z.string(),
  attempt: z.number().int(),
  workerId: z.string().optional(),
  workerKind: workerKindSchema.optional(),
  cached: z.boolean().optional(),
});
export type FlotaAnswerInfo = z.infer<typeof flotaAnswerInfoSchema>;

/** `POST /v1/chat/completions` → 200 without `stream`. */
export const chatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.literal(0),
      message: z.object({
        role: z.literal('assistant'),
        content: z.string(),
        refusal: z.null(),
      }),
      logprobs: z.null(),
      finish_reason: finishReasonSchema,
    }),
  ),
  usage: openAiUsageSchema.optional(),
  system_fingerprint: z.null(),
  flota: flotaAnswerInfoSchema,
});
export type ChatCompletion = z.infer<typeof chatCompletionSchema>;

/** One server-sent event of `POST /v1/chat/completions` with `stream: true`. */
export const chatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.literal(0),
      delta: z.object({
        role: z.literal('assistant').optional(),
        content: z.string().optional(),
      }),
      logprobs: z.null(),
      finish_reason: finishReasonSchema.nullable(),
    }),
  ),
  /** With `stream_options.include_usage`: null on every chunk but the last, which has no choices. */
  usage: openAiUsageSchema.nullable().optional(),
  system_fingerprint: z.null(),
  /**
   * On the one chunk (with an empty delta) that says the answer starts over:
   * its attempt was lost and the next worker could not continue it. What
   * was streamed before is void; the text from here on is the whole answer.
   */
  flota: z.object({ restarted: z.object({ attempt: z.number().int() }) }).optional(),
});
export type ChatCompletionChunk = z.infer<typeof chatCompletionChunkSchema>;

/**
 * `GET /v1/models` entries, with what flota knows of where each model runs
 * now: the registry's entry of `GET /api/models`, its name being the `id`.
 */
export const openAiModelSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.literal('flota'),
  flota: modelEntrySchema.omit({ name: true }),
});
export type OpenAiModel = z.infer<typeof openAiModelSchema>;

/** `GET /v1/models` → 200. */
export const openAiModelListSchema = z.object({
  object: z.literal('list'),
  data: z.array(openAiModelSchema),
});
export type OpenAiModelList = z.infer<typeof openAiModelListSchema>;

/** OpenAI's error body. */
export const openAiErrorBodySchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});
export type OpenAiErrorBody = z.infer<typeof openAiErrorBodySchema>;
