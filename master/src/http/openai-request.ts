/**
 * An OpenAI chat completion request as a flota submission: the last message
 * is the question (`prompt`), the ones before it the history, `developer`
 * counts as `system`, and flota's options come from the `flota` body field or
 * the `x-flota-*` headers. Pure: the routes parse, this maps, and the result
 * passes the same schema as `POST /api/tasks`.
 */

import { ValidationError } from '../../../common/errors.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  type ChatCompletionRequest,
  chatCompletionRequestSchema,
  contentText,
  FLOTA_OPTION_HEADERS,
  type FlotaOptions,
  flotaOptionsSchema,
} from '../../../proto/src/schemas/openai.ts';
import { type SubmitTask, submitTaskSchema } from '../../../proto/src/schemas/task.ts';

/** Reads a request body; throws ValidationError with the field at fault. */
export function parseChatRequest(body: unknown): ChatCompletionRequest {
  const parsed = chatCompletionRequestSchema.safeParse(body);
  if (!parsed.success) throw new ValidationError(formatZodError(parsed.error));
  return parsed.data;
}

const integer = (header: string, raw: string): number => {
  if (!/^\d+$/.test(raw.trim())) throw new ValidationError(`${header}: expected a whole number`);
  return Number(raw);
};

const boolean = (header: string, raw: string): boolean => {
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ValidationError(`${header}: expected true or false`);
};

/** `zone=eu,tier=a` */
const labelList = (header: string, raw: string): Record<string, string> => {
  const labels: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue;
    const at = pair.indexOf('=');
    if (at <= 0) throw new ValidationError(`${header}: expected key=value pairs, comma-separated`);
    labels[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return labels;
};

/** flota's options from the `x-flota-*` headers (`header(name)` reads one). */
export function optionsFromHeaders(header: (name: string) => string | undefined): FlotaOptions {
  const names = FLOTA_OPTION_HEADERS;
  const raw = {
    priority: header(names.priority),
    gpu: header(names.gpu),
    labels: header(names.labels),
    timeoutMs: header(names.timeoutMs),
    cache: header(names.cache),
  };
  const requires: NonNullable<FlotaOptions['requires']> = {};
  if (raw.gpu !== undefined) requires.gpu = boolean(names.gpu, raw.gpu);
  if (raw.labels !== undefined) requires.labels = labelList(names.labels, raw.labels);
  const options = {
    ...(raw.priority !== undefined && { priority: integer(names.priority, raw.priority) }),
    ...(Object.keys(requires).length > 0 && { requires }),
    ...(raw.timeoutMs !== undefined && { timeoutMs: integer(names.timeoutMs, raw.timeoutMs) }),
    ...(raw.cache !== undefined && { cache: boolean(names.cache, raw.cache) }),
  };
  const parsed = flotaOptionsSchema.safeParse(options);
  if (!parsed.success)
    throw new ValidationError(`x-flota-* headers: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

/** The submission a request stands for; `headerOptions` are overridden by the body's `flota`. */
export function toSubmission(
  request: ChatCompletionRequest,
  headerOptions: FlotaOptions,
): SubmitTask {
  const messages = request.messages.map((m) => ({
    role: m.role === 'developer' ? ('system' as const) : m.role,
    content: contentText(m.content),
  }));
  const last = messages.at(-1);
  if (last?.role !== 'user') {
    throw new ValidationError(
      "messages: the last message must be the user's (the question to answer)",
    );
  }
  const options = { ...headerOptions, ...request.flota };
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const stop = request.stop == null ? undefined : [request.stop].flat();
  const params = {
    ...(request.temperature != null && { temperature: request.temperature }),
    ...(maxTokens !== undefined && { maxTokens }),
    ...(stop && stop.length > 0 && { stop }),
  };
  const submission = {
    prompt: last.content,
    ...(messages.length > 1 && { messages: messages.slice(0, -1) }),
    model: request.model,
    ...(Object.keys(params).length > 0 && { params }),
    ...options,
  };
  const parsed = submitTaskSchema.safeParse(submission);
  if (!parsed.success) throw new ValidationError(formatZodError(parsed.error));
  return parsed.data;
}
