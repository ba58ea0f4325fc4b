/** A deterministic provider for tests and demos: answers `echo: <prompt>`, streamed in pieces. */
import { abortedError } from './scrub.ts';
import type { ChunkHandler, GenerateRequest, GenerateResult, Provider } from './types.ts';
import { abortableDelay } from './wait.ts';

export interface EchoOptions {
  /** Wait before each chunk. */
  delayMs: number;
  /**
   * Up to this much more wait before each chunk: every task draws one extra
   * delay, uniform in 0..jitterMs, so tasks take different times. Default 0.
   */
  jitterMs?: number;
  /** Characters per chunk. */
  chunkSize: number;
  /** Source of randomness in [0, 1) for the jitter; Math.random unless a test injects one. */
  random?: () => number;
}

export function echoAnswer(request: Pick<GenerateRequest, 'prompt' | 'messages'>): string {
  const lastUser = request.messages?.filter((m) => m.role === 'user').at(-1)?.content;
  return `echo: ${request.prompt || lastUser || ''}`;
}

/** A rough token count (about four characters per token) so usage is never empty. */
function approxTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** The wait before each chunk of one task: delayMs plus this task's draw of 0..jitterMs. */
export function echoChunkDelay(
  delayMs: number,
  jitterMs: number,
  random: () => number = Math.random,
): number {
  if (jitterMs <= 0) return delayMs;
  const draw = Math.min(Math.max(random(), 0), 1);
  return delayMs + Math.min(jitterMs, Math.floor(draw * (jitterMs + 1)));
}

export function createEchoProvider(options: EchoOptions): Provider {
  const chunkSize = Math.max(1, options.chunkSize);
  const jitterMs = Math.max(0, options.jitterMs ?? 0);
  return {
    name: 'echo',
    async generate(request: GenerateRequest, onChunk: ChunkHandler): Promise<GenerateResult> {
      const text = echoAnswer(request);
      const delayMs = echoChunkDelay(options.delayMs, jitterMs, options.random);
      for (let at = 0; at < text.length; at += chunkSize) {
        if (delayMs > 0) await abortableDelay(delayMs, request.signal);
        else if (request.signal.aborted) throw abortedError();
        onChunk(text.slice(at, at + chunkSize));
      }
      return {
        text,
        usage: { inputTokens: approxTokens(request.prompt), outputTokens: approxTokens(text) },
      };
    },
  };
}
