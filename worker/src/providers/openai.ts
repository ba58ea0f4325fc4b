/**
 * Any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, OpenAI):
 * POST {baseUrl}/chat/completions with `stream: true`, deltas over SSE.
 */
import { ProviderError } from '../../../common/errors.ts';
import { abortedError, isAbortError, scrubSecrets } from './scrub.ts';
import { sseData } from './sse.ts';
import type { ChunkHandler, GenerateRequest, GenerateResult, Provider, Usage } from './types.ts';

/**
 * How the server continues a half-streamed answer: `off` (it cannot: a new
 * attempt starts over), `prefill` (the text goes last, as an assistant
 * message the server carries on: Ollama, llama.cpp's server), `vllm` (the
 * same, with vLLM's `continue_final_message`).
 */
export type OpenAiContinuation = 'off' | 'prefill' | 'vllm';

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  continuation?: OpenAiContinuation;
  fetch?: typeof fetch;
}

interface StreamEvent {
  choices?: Array<{ delta?: { content?: string | null } }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

function buildMessages(request: GenerateRequest): Array<{ role: string; content: string }> {
  const messages = [{ role: 'user', content: request.prompt }];
  if (request.messages && request.messages.length > 0) {
    messages.splice(0, 1, ...request.messages.map((m) => ({ role: m.role, content: m.content })));
    const last = messages.at(-1);
    if (request.prompt && !(last?.role === 'user' && last.content === request.prompt)) {
      messages.push({ role: 'user', content: request.prompt });
    }
  }
  // Assistant prefill: the answer so far, for the server to carry on.
  if (request.continueFrom) messages.push({ role: 'assistant', content: request.continueFrom });
  return messages;
}

export function createOpenAiProvider(options: OpenAiOptions): Provider {
  const doFetch = options.fetch ?? fetch;
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const continuation = options.continuation ?? 'off';
  return {
    name: 'openai',
    continues: continuation !== 'off',
    async generate(request: GenerateRequest, onChunk: ChunkHandler): Promise<GenerateResult> {
      const key = request.apiKey ?? options.apiKey;
      const scrub = (text: string) => scrubSecrets(text, [key, options.apiKey, request.apiKey]);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'text/event-stream',
      };
      if (key) headers.authorization = `Bearer ${key}`;
      const body = {
        model: request.model,
        messages: buildMessages(request),
        stream: true,
        stream_options: { include_usage: true },
        ...(request.params.temperature !== undefined && {
          temperature: request.params.temperature,
        }),
        ...(request.params.maxTokens !== undefined && { max_tokens: request.params.maxTokens }),
        ...(request.params.stop !== undefined && { stop: request.params.stop }),
        ...(request.continueFrom &&
          continuation === 'vllm' && {
            continue_final_message: true,
            add_generation_prompt: false,
          }),
      };
      let text = '';
      let usage: Usage | undefined;
      try {
        const response = await doFetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: request.signal,
        });
        if (!response.ok) {
          const detail = (await response.text().catch(() => '')).slice(0, 300);
          const hint =
            response.status === 401 || response.status === 403
              ? ' (the API key was rejected or is missing)'
              : '';
          throw new ProviderError(
            scrub(`OpenAI-compatible server answered HTTP ${response.status}${hint}: ${detail}`),
          );
        }
        if (!response.body) throw new ProviderError('OpenAI-compatible server sent no body');
        for await (const data of sseData(response.body)) {
          if (data.trim() === '[DONE]') break;
          let event: StreamEvent;
          try {
            event = JSON.parse(data) as StreamEvent;
          } catch {
            throw new ProviderError('OpenAI-compatible server sent an unreadable stream event');
          }
          if (event.error) {
            throw new ProviderError(scrub(`stream error: ${event.error.message ?? 'unknown'}`));
          }
          const piece = event.choices?.[0]?.delta?.content;
          if (piece) {
            text += piece;
            onChunk(piece);
          }
          if (event.usage) {
            usage = {
              inputTokens: event.usage.prompt_tokens ?? 0,
              outputTokens: event.usage.completion_tokens ?? 0,
            };
          }
        }
      } catch (error) {
        if (isAbortError(error, request.signal)) throw abortedError();
        if (error instanceof ProviderError) throw error;
        const message = error instanceof Error ? error.message : String(error);
        throw new ProviderError(scrub(`OpenAI-compatible request failed: ${message}`));
      }
      return usage ? { text, usage } : { text };
    },
  };
}
