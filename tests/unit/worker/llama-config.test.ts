import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../../worker/src/config.ts';
import { quantizationOf } from '../../../worker/src/models/gguf-info.ts';
import { scanModelsDir } from '../../../worker/src/models/scan.ts';

const root = mkdtempSync(join(os.tmpdir(), 'flota-llama-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A directory holding empty files by these names (the scan reads names and sizes only). */
function dirWith(files: Record<string, number>): string {
  const dir = mkdtempSync(join(root, 'models-'));
  for (const [name, size] of Object.entries(files))
    writeFileSync(join(dir, name), Buffer.alloc(size));
  return dir;
}

describe('MODELS_DIR scan', () => {
  it('lists .gguf files by name, a split model once with all its parts', () => {
    const dir = dirWith({
      'qwen-q4_k_m.gguf': 10,
      'big-00002-of-00002.gguf': 7,
      'big-00001-of-00002.gguf': 5,
      'notes.txt': 3,
      'UPPER.GGUF': 1,
    });
    mkdirSync(join(dir, 'sub.gguf'));
    expect(scanModelsDir(dir)).toEqual([
      { name: 'big', path: join(dir, 'big-00001-of-00002.gguf'), sizeBytes: 12 },
      { name: 'qwen-q4_k_m', path: join(dir, 'qwen-q4_k_m.gguf'), sizeBytes: 10 },
      { name: 'UPPER', path: join(dir, 'UPPER.GGUF'), sizeBytes: 1 },
    ]);
  });
});

describe('llama worker configuration', () => {
  it('serves every model in MODELS_DIR when MODELS is unset', () => {
    const dir = dirWith({ 'b.gguf': 1, 'a.gguf': 1 });
    const config = loadWorkerConfig({ PROVIDER: 'llama', MODELS_DIR: dir });
    expect(config.models).toEqual(['a', 'b']);
    expect(config).toMatchObject({
      provider: 'llama',
      modelsDir: dir,
      modelIdleS: 300,
      modelContextSize: 4096,
      kind: 'cpu',
      kindSet: false,
    });
    expect(config.modelThreads).toBeUndefined();
    const share = Math.floor((os.totalmem() / (1024 * 1024)) * 0.75);
    expect(config.modelMemoryMb).toBe(share);
  });

  it('reads the llama variables', () => {
    const dir = dirWith({ 'a.gguf': 1 });
    const config = loadWorkerConfig({
      PROVIDER: 'llama',
      MODELS_DIR: dir,
      MODELS: 'a',
      MODEL_IDLE_S: '0',
      MODEL_MEMORY_MB: '2048',
      MODEL_CONTEXT_SIZE: '8192',
      MODEL_THREADS: '3',
      WORKER_KIND: 'gpu',
    });
    expect(config).toMatchObject({
      models: ['a'],
      modelIdleS: 0,
      modelMemoryMb: 2048,
      modelContextSize: 8192,
      modelThreads: 3,
      kind: 'gpu',
      kindSet: true,
    });
  });

  it('names MODELS_DIR when it holds no model or cannot be read', () => {
    expect(() => loadWorkerConfig({ PROVIDER: 'llama', MODELS_DIR: dirWith({}) })).toThrow(
      /MODELS_DIR: no \.gguf files in/,
    );
    expect(() => loadWorkerConfig({ PROVIDER: 'llama', MODELS_DIR: join(root, 'absent') })).toThrow(
      /MODELS_DIR: cannot read/,
    );
  });

  it('refuses values out of range, each named', () => {
    expect(() =>
      loadWorkerConfig({ MODEL_MEMORY_MB: '0', MODEL_CONTEXT_SIZE: '10', MODEL_IDLE_S: '-1' }),
    ).toThrow(/MODEL_IDLE_S[\s\S]*MODEL_MEMORY_MB[\s\S]*MODEL_CONTEXT_SIZE/);
  });

  it('leaves other providers alone', () => {
    expect(loadWorkerConfig({ MODELS_DIR: join(root, 'absent') }).models).toEqual(['echo']);
  });
});

describe('quantisation', () => {
  it('comes from general.file_type, else from the file name', () => {
    expect(quantizationOf(15, 'anything')).toBe('Q4_K_M');
    expect(quantizationOf(0, 'x')).toBe('F32');
    expect(quantizationOf(undefined, 'qwen2.5-1.5b-instruct-q5_k_s')).toBe('Q5_K_S');
    expect(quantizationOf(undefined, 'Llama-3.2-1B-Instruct-Q4_K_M')).toBe('Q4_K_M');
    expect(quantizationOf(undefined, 'phi-2.F16')).toBe('F16');
    expect(quantizationOf(undefined, 'mystery')).toBeUndefined();
  });
});
