/**
 * What a GGUF file says of its model, read from its header alone (the
 * tensors are not touched): the catalog entry a worker advertises.
 */
import { GgufFileType, ggufFileQuantNames, readGgufFileInfo } from 'node-llama-cpp';
import type { ModelInfo } from '../../../proto/src/schemas/worker.ts';
import type { ModelFile } from './scan.ts';

/** Large arrays of the header nobody here needs: skipped rather than kept. */
const SKIPPED_KEYS = [
  'tokenizer.ggml.tokens',
  'tokenizer.ggml.scores',
  'tokenizer.ggml.token_type',
  'tokenizer.ggml.merges',
];

/** Longest names first, so Q4_K_M wins over Q4_K. */
const QUANT_NAMES = [...ggufFileQuantNames].sort((a, b) => b.length - a.length);

/**
 * The quantisation as `general.file_type` names it (MOSTLY_Q4_K_M → Q4_K_M,
 * ALL_F32 → F32), else as the file name does (`…-Q5_K_S.gguf`).
 */
export function quantizationOf(fileType: unknown, fileName: string): string | undefined {
  if (typeof fileType === 'number') {
    const name = GgufFileType[fileType];
    if (typeof name === 'string') return name.replace(/^(MOSTLY|ALL)_/, '');
  }
  const upper = fileName.toUpperCase();
  return QUANT_NAMES.find((quant) => new RegExp(`(^|[-_.])${quant}($|[-_.])`).test(upper));
}

export async function readModelInfo(file: ModelFile): Promise<ModelInfo> {
  const info = await readGgufFileInfo(file.path, {
    readTensorInfo: false,
    ignoreKeys: SKIPPED_KEYS,
    logWarnings: false,
  });
  const general = info.metadata.general as { file_type?: unknown } | undefined;
  const contextLength = (info.architectureMetadata as { context_length?: unknown }).context_length;
  return {
    name: file.name,
    provider: 'llama',
    sizeBytes: file.sizeBytes,
    quantization: quantizationOf(general?.file_type, file.name),
    ...(typeof contextLength === 'number' &&
      Number.isInteger(contextLength) &&
      contextLength > 0 && { contextLength }),
  };
}
