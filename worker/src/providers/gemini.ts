/**
 * Google Gemini through `@google/genai`, the maintained successor of
 * `@google/generative-ai`. `baseUrl` points the SDK at a proxy or a test server.
 */
import { ApiError, type Content, GoogleGenAI } from '@google/genai';
import { ProviderError } from '../../../common/errors.ts';
import { abortedError, isAbortError, scrubSecrets } from './scrub.ts';
import type { ChunkHandler, GenerateRequest, GenerateResult, Provider, Usage } from './types.ts';

export interface GeminiOptions {
  apiKey?: string;
  baseUrl?: string;
}

function buildContents(request: GenerateRequest): { contents: Content[]; system?: string } {
  const contents: Content[] = [];
  const system: string[] = [];
  for (const message of request.messages ?? []) {
    if (message.role === 'system') system.push(message.content);
    else
      contents.push({
        role: message.role === 'assistant' ? 'model' : 'user',
        parts: [{ text: message.content }],
      });
  }
  const last = contents.at(-1);
  const lastText = last?.parts?.[0]?.text;
  if (request.prompt && !(last?.role === 'user' && lastText === request.prompt)) {
    contents.push({ role: 'user', parts: [{ text: request.prompt }] });
  }
  return system.length > 0 ? { contents, system: system.join('\n\n') } : { contents };
}

function describeStatus(status: number): string {
  if (status === 401 || status === 403) return 'Gemini rejected the API key';
  if (status === 429) return 'Gemini rate limit or quota exceeded';
  if (status >= 500) return 'Gemini is unavailable';
  return 'Gemini rejected the request';
}

export function createGeminiProvider(options: GeminiOptions): Provider {
  return {
    name: 'gemini',
    async generate(request: GenerateRequest, onChunk: ChunkHandler): Promise<GenerateResult> {
      const apiKey = request.apiKey ?? options.apiKey;
      if (!apiKey) {
        throw new ProviderError(
          'no Gemini API key: set GEMINI_API_KEY on the worker or send apiKey with the task',
        );
      }
      const scrub = (text: string) => scrubSecrets(text, [apiKey, options.apiKey]);
      const ai = new GoogleGenAI({
        apiKey,
        ...(options.baseUrl && { httpOptions: { baseUrl: options.baseUrl } }),
      });
      const { contents, system } = buildContents(request);
      let text = '';
      let usage: Usage | undefined;
      try {
        const stream = await ai.models.generateContentStream({
          model: request.model,
          contents,
          config: {
            abortSignal: request.signal,
            ...(system && { systemInstruction: system }),
            ...(request.params.temperature !== undefined && {
              temperature: request.params.temperature,
            }),
            ...(request.params.maxTokens !== undefined && {
              maxOutputTokens: request.params.maxTokens,
            }),
            ...(request.params.stop !== undefined && { stopSequences: request.params.stop }),
          },
        });
        for await (const chunk of stream) {
          const piece = chunk.text;
          if (piece) {
            text += piece;
            onChunk(piece);
          }
          const meta = chunk.usageMetadata;
          if (meta) {
            usage = {
              inputTokens: meta.promptTokenCount ?? 0,
              outputTokens: meta.candidatesTokenCount ?? 0,
            };
          }
          if (request.signal.aborted) throw abortedError();
        }
      } catch (error) {
        if (isAbortError(error, request.signal)) throw abortedError();
        if (error instanceof ApiError) {
          throw new ProviderError(
            scrub(`${describeStatus(error.status)} (HTTP ${error.status}): ${error.message}`),
          );
        }
        const message = error instanceof Error ? error.message : String(error);
        throw new ProviderError(scrub(`Gemini request failed: ${message}`));
      }
      return usage ? { text, usage } : { text };
    },
  };
}
