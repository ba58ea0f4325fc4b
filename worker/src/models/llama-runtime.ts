/**
 * node-llama-cpp, set up the way a worker needs it: prebuilt binaries only
 * (it never builds llama.cpp or downloads anything), llama.cpp's own log
 * lines in the worker's log, and a loader for the model pool that loads a
 * GGUF file with one context holding a sequence per task slot.
 */
import os from 'node:os';
import {
  type ChatWrapper,
  GeneralChatWrapper,
  GgufInsights,
  getLlama,
  type Llama,
  type LlamaContext,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  resolveChatWrapper,
} from 'node-llama-cpp';
import type { Logger } from '../../../common/logger.ts';
import type { WorkerKind } from '../../../proto/src/schemas/worker.ts';
import type { ModelLoader } from './model-pool.ts';
import type { ModelFile } from './scan.ts';

const MB = 1024 * 1024;

export interface LlamaRuntimeOptions {
  /** Look for CUDA, Vulkan or Metal (false: the CPU only). */
  useGpu: boolean;
  /** Threads for the CPU; default: every core (node-llama-cpp would take at least 4). */
  threads?: number;
  log: Logger;
}

/** A model in memory with what generating from it needs. */
export interface LoadedLlama {
  model: LlamaModel;
  /** One sequence per task slot. */
  context: LlamaContext;
  /** The model's own chat template when its file has one, else a plain layout. */
  chatWrapper: ChatWrapper;
}

/** llama.cpp's warnings and errors, in the worker's log. */
function llamaLogger(log: Logger): (level: LlamaLogLevel, message: string) => void {
  return (level, message) => {
    const text = message.trim();
    if (text === '') return;
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log.error(text);
    else if (level === LlamaLogLevel.warn) log.warn(text);
    else log.debug(text);
  };
}

export function openLlama(options: LlamaRuntimeOptions): Promise<Llama> {
  return getLlama({
    build: 'never',
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    gpu: options.useGpu ? 'auto' : false,
    // node-llama-cpp takes at least 4 threads; on fewer cores they spin against each other.
    maxThreads: options.threads ?? os.availableParallelism(),
    logLevel: LlamaLogLevel.warn,
    logger: llamaLogger(options.log.child({ component: 'llama.cpp' })),
  });
}

/** `gpu` when the binary in use drives a GPU. */
export function kindOf(llama: Llama): WorkerKind {
  return llama.gpu === false ? 'cpu' : 'gpu';
}

export interface LlamaLoaderOptions {
  llama: Llama;
  files: ReadonlyMap<string, ModelFile>;
  /** Tokens a task may see (prompt and answer), capped at what the model was trained for. */
  contextSize: number;
  /** Tasks that may use one model at once: the worker's slots. */
  sequences: number;
}

function chatWrapperFor(model: LlamaModel): ChatWrapper {
  const template = model.fileInfo.metadata.tokenizer?.chat_template;
  if (typeof template === 'string' && template.trim() !== '') {
    return resolveChatWrapper(model) ?? new GeneralChatWrapper();
  }
  return new GeneralChatWrapper();
}

export function createLlamaLoader(options: LlamaLoaderOptions): ModelLoader<LoadedLlama> {
  const { llama, files, sequences } = options;
  const fileOf = (name: string): ModelFile => {
    const file = files.get(name);
    if (!file) throw new Error(`no file for model ${name}`);
    return file;
  };
  const gpuLayers = (insights: GgufInsights) => (llama.gpu === false ? 0 : insights.totalLayers);
  return {
    async estimateMb(name) {
      const info = await readGgufFileInfo(fileOf(name).path, { logWarnings: false });
      const insights = await GgufInsights.from(info, llama);
      const contextSize = Math.min(options.contextSize, insights.trainContextSize ?? Infinity);
      const layers = gpuLayers(insights);
      const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers: layers });
      const context = await insights.estimateContextResourceRequirementsV2({
        contextSize,
        modelGpuLayers: layers,
        sequences,
      });
      return (weights.cpuRam + weights.gpuVram + context.cpuRam + context.gpuVram) / MB;
    },
    async load(name) {
      const model = await llama.loadModel({
        modelPath: fileOf(name).path,
        gpuLayers: llama.gpu === false ? 0 : 'auto',
      });
      try {
        const context = await model.createContext({
          sequences,
          contextSize: { max: Math.min(options.contextSize, model.trainContextSize) },
        });
        const used = model.memoryUsage.ram + model.memoryUsage.vram;
        const memMb = (used + context.memoryUsage.ram + context.memoryUsage.vram) / MB;
        return { model: { model, context, chatWrapper: chatWrapperFor(model) }, memMb };
      } catch (error) {
        await model.dispose();
        throw error;
      }
    },
    async unload({ model, context }) {
      await context.dispose();
      await model.dispose();
    },
  };
}
