import { ConfigError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import type { WorkerConfig } from '../config.ts';
import { createEchoProvider } from './echo.ts';
import type { Provider } from './types.ts';

export type { ChunkHandler, GenerateRequest, GenerateResult, Provider, Usage } from './types.ts';
export { ABORTED_CODE } from './types.ts';

/** Builds the provider the configuration names, loading only its own SDK. */
export async function createProvider(config: WorkerConfig, log: Logger): Promise<Provider> {
  switch (config.provider) {
    case 'echo':
      return createEchoProvider({
        delayMs: config.echoDelayMs,
        jitterMs: config.echoDelayJitterMs,
        chunkSize: config.echoChunkSize,
      });
    case 'gemini': {
      const { createGeminiProvider } = await import('./gemini.ts');
      return createGeminiProvider({ apiKey: config.geminiApiKey, baseUrl: config.geminiBaseUrl });
    }
    case 'openai': {
      if (!config.openaiBaseUrl)
        throw new ConfigError('OPENAI_BASE_URL: required when PROVIDER=openai');
      const { createOpenAiProvider } = await import('./openai.ts');
      return createOpenAiProvider({
        baseUrl: config.openaiBaseUrl,
        apiKey: config.openaiApiKey,
        continuation: config.openaiContinuation,
      });
    }
    case 'llama': {
      const { createLlamaProvider } = await import('./llama.ts');
      return createLlamaProvider({
        modelsDir: config.modelsDir,
        models: config.models,
        slots: config.slots,
        idleMs: config.modelIdleS * 1000,
        memoryMb: config.modelMemoryMb,
        contextSize: config.modelContextSize,
        // WORKER_KIND=cpu keeps the models off any GPU; otherwise use one when there is one.
        useGpu: !config.kindSet || config.kind === 'gpu',
        requireGpu: config.kindSet && config.kind === 'gpu',
        threads: config.modelThreads,
        log,
      });
    }
    default: {
      const unknown: never = config.provider;
      throw new ConfigError(`PROVIDER: unknown provider ${String(unknown)}`);
    }
  }
}
