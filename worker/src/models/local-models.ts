/**
 * What a provider that runs models in the worker process adds to the plain
 * Provider: what it has on disk (the online status's `catalog`), what it holds
 * in memory now (the heartbeat's `loaded`), the kind of machine it found, and
 * a close that frees it all. Kept free of node-llama-cpp so the agent can ask
 * any provider without loading it.
 */
import type { LoadedModel, ModelInfo, WorkerKind } from '../../../proto/src/schemas/worker.ts';
import type { Provider } from '../providers/types.ts';

export interface LocalModelHost {
  /** Every model the worker serves, with what its file says of it. */
  catalog(): ModelInfo[];
  /** The models in memory now. */
  loaded(): LoadedModel[];
  /** `gpu` when the runtime found CUDA, Vulkan or Metal, else `cpu`. */
  readonly detectedKind: WorkerKind;
  /** Unloads every model and frees the runtime. Idempotent. */
  close(): Promise<void>;
}

export type LocalModelProvider = Provider & LocalModelHost;

export function isLocalModelProvider(provider: Provider): provider is LocalModelProvider {
  const candidate = provider as Partial<LocalModelHost>;
  return (
    typeof candidate.catalog === 'function' &&
    typeof candidate.loaded === 'function' &&
    typeof candidate.close === 'function'
  );
}
