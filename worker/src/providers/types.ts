import type { ChatMessage, GenerationParams } from '../../../proto/src/schemas/task.ts';
import type { ProviderName } from '../../../proto/src/schemas/worker.ts';

export interface GenerateRequest {
  model: string;
  prompt: string;
  messages?: ChatMessage[];
  params: GenerationParams;
  /** The caller's own key; wins over the worker's configured key. Never logged. */
  apiKey?: string;
  signal: AbortSignal;
  /** When the worker started the attempt (epoch ms, the result's `startedAt`); echo paces its chunks from it. */
  startedAt?: number;
  /**
   * The text an earlier attempt already streamed. A provider whose
   * `continues` is true generates only what follows it (assistant prefill):
   * its chunks and result hold the new text alone. Others never receive it.
   */
  continueFrom?: string;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Counted by the worker, not reported by the provider (an estimate for the model's own tokenizer). */
  estimated?: boolean;
}

export interface GenerateResult {
  text: string;
  usage?: Usage;
}

/** Called with each piece of text as it arrives; the pieces concatenate to the final text. */
export type ChunkHandler = (text: string) => void;

/**
 * A model backend. `generate` streams through `onChunk` and resolves with
 * the whole text; it rejects with a `ProviderError` (code `aborted` when the
 * signal fired) whose message never contains a key.
 */
export interface Provider {
  readonly name: ProviderName;
  /** True when `generate` honours `continueFrom`. */
  readonly continues?: boolean;
  generate(request: GenerateRequest, onChunk: ChunkHandler): Promise<GenerateResult>;
}

export const ABORTED_CODE = 'aborted';
