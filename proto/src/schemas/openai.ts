/**
 * The OpenAI-compatible API (`/v1`): the request flota accepts on
 * `POST /v1/chat/completions`, the answers it gives (OpenAI's shapes, so the
 * official SDKs and tools work unchanged), and flota's own options, which a
 * client sends as a `flota` body field or as `x-flota-*` headers.
 */
import { z } from 'zod';
import type { ModelEntry } from './models.ts';
import {
  MAX_HISTORY_MESSAGES,
  modelSchema,
  requirementsSchema,
  storableText,
  submitTaskFields,
} from './task.ts';

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
export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** flota's: the provider gave no counts, so the worker counted them with its own tokenizer. */
  estimated?: true;
}

/** How a choice ended: `stop` (the model finished or hit a stop sequence). */
export type FinishReason = 'stop' | 'length';

/** What flota adds to each answer: where and how the task ran. */
export interface FlotaAnswerInfo {
  taskId: string;
  attempt: number;
  workerId?: string;
  workerKind?: 'cpu' | 'gpu';
  cached?: boolean;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    message: { role: 'assistant'; content: string; refusal: null };
    logprobs: null;
    finish_reason: FinishReason;
  }>;
  usage?: OpenAiUsage;
  system_fingerprint: null;
  flota: FlotaAnswerInfo;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    delta: { role?: 'assistant'; content?: string };
    logprobs: null;
    finish_reason: FinishReason | null;
  }>;
  /** With `stream_options.include_usage`: null on every chunk but the last, which has no choices. */
  usage?: OpenAiUsage | null;
  system_fingerprint: null;
  /**
   * On the one chunk (with an empty delta) that says the answer starts over:
   * its attempt was lost and the next worker could not continue it. What
   * was streamed before is void; the text from here on is the whole answer.
   */
  flota?: { restarted: { attempt: number } };
}

/**
 * `GET /v1/models` entries, with what flota knows of where each model runs
 * now: the registry's entry of `GET /api/models`, its name being the `id`.
 */
export interface OpenAiModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: 'flota';
  flota: Omit<ModelEntry, 'name'>;
}

/** OpenAI's error body. */
export interface OpenAiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}
