/** A deterministic provider for tests and demos: answers `echo: <prompt>`, streamed in pieces. */
import type { Clock } from '../../../common/clock.ts';
import { abortedError } from './scrub.ts';
import type { ChunkHandler, GenerateRequest, GenerateResult, Provider } from './types.ts';
import { abortableDelay } from './wait.ts';

export interface EchoOptions {
  clock: Clock;
  /** Wait before each chunk. */
  delayMs: number;
  /** Characters per chunk. */
  chunkSize: number;
}

export function echoAnswer(request: Pick<GenerateRequest, 'prompt' | 'messages'>): string {
  const lastUser = request.messages?.filter((m) => m.role === 'user').at(-1)?.content;
  return `echo: ${request.prompt || lastUser || ''}`;
}

/** A rough token count (about four characters per token) so usage is never empty. */
function approxTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export function createEchoProvider(options: EchoOptions): Provider {
  const chunkSize = Math.max(1, options.chunkSize);
  return {
    name: 'echo',
    async generate(request: GenerateRequest, onChunk: ChunkHandler): Promise<GenerateResult> {
      const text = echoAnswer(request);
      for (let at = 0; at < text.length; at += chunkSize) {
        if (options.delayMs > 0)
          await abortableDelay(options.clock, options.delayMs, request.signal);
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
