/**
 * A deterministic provider for tests and demos: answers `echo: <prompt>`,
 * streamed in pieces. It continues a half-streamed answer (`continueFrom`)
 * with the rest of the same answer, so a continued answer equals an
 * uninterrupted one.
 */
import { EchoClock } from './echo-clock.ts';
import { abortedError } from './scrub.ts';
import type { ChunkHandler, GenerateRequest, GenerateResult, Provider } from './types.ts';

export interface EchoOptions {
  /** Time between chunks: chunk i is due `(i + 1) × delayMs` after the attempt started. */
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

/** `echo: <prompt>`, ending before the first stop sequence in it (as a model stops). */
export function echoAnswer(
  request: Pick<GenerateRequest, 'prompt' | 'messages'> & { params?: GenerateRequest['params'] },
): string {
  const lastUser = request.messages?.filter((m) => m.role === 'user').at(-1)?.content;
  const text = `echo: ${request.prompt || lastUser || ''}`;
  let end = text.length;
  for (const stop of request.params?.stop ?? []) {
    const at = text.indexOf(stop);
    if (at !== -1 && at < end) end = at;
  }
  return text.slice(0, end);
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
  const clock = new EchoClock();
  /**
   * Chunk i is due at start + (i + 1) × delay, as a model server produces at
   * its own pace: a worker that falls behind gets the late chunks at once, and
   * none comes before it is due, so a chunk's production time follows from the
   * attempt's startedAt (bench/streams.ts).
   */
  const paced = (
    text: string,
    request: GenerateRequest,
    delayMs: number,
    onChunk: ChunkHandler,
  ): Promise<void> =>
    new Promise((resolve, reject) => {
      const { signal } = request;
      if (signal.aborted) return reject(abortedError());
      let at = 0;
      let due = request.startedAt ?? Date.now();
      const end = (error?: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = () => {
        clock.cancel(due, step);
        end(abortedError());
      };
      const step = () => {
        try {
          onChunk(text.slice(at, at + chunkSize));
        } catch (error) {
          return end(error);
        }
        at += chunkSize;
        if (at >= text.length) return end();
        due += delayMs;
        clock.at(due, step);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      due += delayMs;
      clock.at(due, step);
    });
  return {
    name: 'echo',
    continues: true,
    async generate(request: GenerateRequest, onChunk: ChunkHandler): Promise<GenerateResult> {
      // The answer is a function of the prompt: what follows the continued text is the rest of it.
      const text = echoAnswer(request).slice(request.continueFrom?.length ?? 0);
      const delayMs = echoChunkDelay(options.delayMs, jitterMs, options.random);
      if (delayMs > 0) await paced(text, request, delayMs, onChunk);
      else {
        for (let at = 0; at < text.length; at += chunkSize) {
          if (request.signal.aborted) throw abortedError();
          onChunk(text.slice(at, at + chunkSize));
        }
      }
      return {
        text,
        usage: {
          inputTokens: approxTokens(request.prompt),
          outputTokens: approxTokens(text),
          estimated: true,
        },
      };
    },
  };
}
