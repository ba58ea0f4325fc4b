/**
 * Runs GGUF models in the worker process through node-llama-cpp. Models are
 * loaded on their first task and shared by the tasks that follow (a context
 * sequence each); the pool unloads them when idle or when another needs the
 * memory. Chat history goes through the model's own chat template; a model
 * without one gets a plain layout. Given `continueFrom`, the text is placed
 * as the start of the assistant's answer and only what follows is generated.
 */
import { type ChatHistoryItem, LlamaChat, type LlamaModel, type Token } from 'node-llama-cpp';
import { ConfigError, ProviderError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import type { ModelInfo } from '../../../proto/src/schemas/worker.ts';
import { readModelInfo } from '../models/gguf-info.ts';
import { createLlamaLoader, kindOf, type LoadedLlama, openLlama } from '../models/llama-runtime.ts';
import type { LocalModelProvider } from '../models/local-models.ts';
import { ModelPool } from '../models/model-pool.ts';
import { type ModelFile, scanModelsDir } from '../models/scan.ts';
import { abortedError } from './scrub.ts';
import type { ChunkHandler, GenerateRequest, GenerateResult } from './types.ts';

export interface LlamaProviderOptions {
  /** Where the GGUF files are (MODELS_DIR). */
  modelsDir: string;
  /** The models this worker serves: files in `modelsDir` by name (without `.gguf`). */
  models: readonly string[];
  /** Tasks at once (SLOTS): each model gets a context sequence per slot. */
  slots: number;
  /** Idle time before a model is unloaded, in ms (MODEL_IDLE_S × 1000). */
  idleMs: number;
  /** Memory all loaded models may take, in MB (MODEL_MEMORY_MB). */
  memoryMb: number;
  /** Tokens a task may see, prompt and answer (MODEL_CONTEXT_SIZE). */
  contextSize: number;
  /** Use a GPU when there is one. */
  useGpu: boolean;
  /** Refuse to start without a GPU (WORKER_KIND=gpu). */
  requireGpu?: boolean;
  /** CPU threads; default every core. */
  threads?: number;
  log: Logger;
}

export interface LlamaProvider extends LocalModelProvider {
  /** The loaded models; tests wait on its `loaded` and `unloaded` events. */
  readonly pool: ModelPool<LoadedLlama>;
}

/** Tokens of the text before a piece that its detokenization looks at (spacing). */
const TRAIL_TOKENS = 16;
/** Longest UTF-8 sequence: a piece ending in half a character waits at most this many tokens. */
const MAX_PARTIAL_TOKENS = 4;
const REPLACEMENT_CHAR = '\uFFFD';

/**
 * The chat as node-llama-cpp takes it: the messages, the prompt as the last
 * user turn (unless it already is), and an assistant turn to write, which
 * starts with `continueFrom` when given.
 */
export function toChatHistory(request: GenerateRequest): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of request.messages ?? []) {
    if (message.role === 'system') history.push({ type: 'system', text: message.content });
    else if (message.role === 'user') history.push({ type: 'user', text: message.content });
    else history.push({ type: 'model', response: [message.content] });
  }
  const last = history.at(-1);
  const promptIsLast = last?.type === 'user' && last.text === request.prompt;
  if ((request.prompt && !promptIsLast) || history.length === 0) {
    history.push({ type: 'user', text: request.prompt });
  }
  history.push({ type: 'model', response: request.continueFrom ? [request.continueFrom] : [] });
  return history;
}

/**
 * Generated tokens → text pieces. Each piece is detokenized after the tokens
 * before it (the prefill's too), so a word keeps its leading space where
 * node-llama-cpp's own text drops it at the start of a continued answer; a
 * piece ending in half a UTF-8 character waits for the rest.
 */
class PieceDecoder {
  private pending: Token[] = [];
  private trail: Token[];

  constructor(
    private readonly model: LlamaModel,
    prefix: string,
  ) {
    this.trail = prefix === '' ? [] : model.tokenize(prefix, false).slice(-TRAIL_TOKENS);
  }

  push(tokens: readonly Token[]): string {
    this.pending.push(...tokens);
    const text = this.model.detokenize(this.pending, false, this.trail);
    if (text.endsWith(REPLACEMENT_CHAR) && this.pending.length < MAX_PARTIAL_TOKENS) return '';
    this.trail = [...this.trail, ...this.pending].slice(-TRAIL_TOKENS);
    this.pending = [];
    return text;
  }

  flush(): string {
    if (this.pending.length === 0) return '';
    const text = this.model.detokenize(this.pending, false, this.trail);
    this.pending = [];
    return text;
  }
}

async function generateWith(
  loaded: LoadedLlama,
  request: GenerateRequest,
  onChunk: ChunkHandler,
): Promise<GenerateResult> {
  const { model, context, chatWrapper } = loaded;
  const history = toChatHistory(request);
  const { contextText } = chatWrapper.generateContextState({ chatHistory: history });
  const inputTokens = contextText.tokenize(model.tokenizer).length;
  const room = context.contextSize - inputTokens;
  if (room < 1) {
    throw new ProviderError(
      `the conversation takes ${inputTokens} tokens; the model's context holds ${context.contextSize}`,
    );
  }
  const decoder = new PieceDecoder(model, request.continueFrom ?? '');
  let text = '';
  let outputTokens = 0;
  const emit = (piece: string) => {
    if (piece === '') return;
    text += piece;
    onChunk(piece);
  };
  const sequence = context.getSequence();
  const chat = new LlamaChat({ contextSequence: sequence, chatWrapper });
  try {
    await chat.generateResponse(history, {
      signal: request.signal,
      maxTokens: Math.min(request.params.maxTokens ?? room, room),
      temperature: request.params.temperature,
      customStopTriggers: request.params.stop,
      onToken: (tokens) => {
        outputTokens += tokens.length;
        emit(decoder.push(tokens));
      },
    });
    emit(decoder.flush());
  } catch (error) {
    if (request.signal.aborted) throw abortedError();
    const message = error instanceof Error ? error.message : String(error);
    throw new ProviderError(`generation failed: ${message}`, { cause: error });
  } finally {
    chat.dispose();
    sequence.dispose();
  }
  return { text, usage: { inputTokens, outputTokens } };
}

/** The configured models' files; a name with no file is a configuration error. */
function modelFiles(modelsDir: string, models: readonly string[]): Map<string, ModelFile> {
  let found: ModelFile[];
  try {
    found = scanModelsDir(modelsDir);
  } catch (error) {
    throw new ConfigError(`MODELS_DIR: cannot read ${modelsDir}`, { cause: error });
  }
  const byName = new Map(found.map((file) => [file.name, file]));
  const missing = models.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    const present = found.map((file) => file.name).join(', ') || 'none';
    throw new ConfigError(
      `MODELS: no .gguf file in ${modelsDir} for ${missing.join(', ')} (found: ${present})`,
    );
  }
  return new Map(models.map((name) => [name, byName.get(name) as ModelFile]));
}

async function catalogOf(files: Iterable<ModelFile>, log: Logger): Promise<ModelInfo[]> {
  return Promise.all(
    [...files].map((file) =>
      readModelInfo(file).catch((error: unknown): ModelInfo => {
        log.warn(
          { model: file.name, err: error instanceof Error ? error.message : error },
          'model header unreadable',
        );
        return { name: file.name, provider: 'llama', sizeBytes: file.sizeBytes };
      }),
    ),
  );
}

export async function createLlamaProvider(options: LlamaProviderOptions): Promise<LlamaProvider> {
  const log = options.log.child({ component: 'llama' });
  const files = modelFiles(options.modelsDir, options.models);
  const catalog = await catalogOf(files.values(), log);
  const llama = await openLlama({ useGpu: options.useGpu, threads: options.threads, log });
  if (options.requireGpu && llama.gpu === false) {
    await llama.dispose();
    throw new ConfigError(
      'WORKER_KIND=gpu: node-llama-cpp found no GPU it can use (CUDA, Vulkan or Metal); check the driver and the @node-llama-cpp GPU package, or set WORKER_KIND=cpu',
    );
  }
  const pool = new ModelPool<LoadedLlama>({
    loader: createLlamaLoader({
      llama,
      files,
      contextSize: options.contextSize,
      sequences: options.slots,
    }),
    budgetMb: options.memoryMb,
    idleMs: options.idleMs,
    log,
  });
  log.info({ gpu: llama.gpu, models: [...files.keys()] }, 'llama runtime ready');
  let closing: Promise<void> | undefined;
  return {
    name: 'llama',
    continues: true,
    pool,
    detectedKind: kindOf(llama),
    catalog: () => catalog.map((info) => ({ ...info })),
    loaded: () => pool.loaded(),
    async generate(request, onChunk) {
      const lease = await pool.acquire(request.model, request.signal);
      try {
        return await generateWith(lease.model, request, onChunk);
      } finally {
        lease.release();
      }
    },
    close() {
      closing ??= pool.close().then(() => llama.dispose());
      return closing;
    },
  };
}
