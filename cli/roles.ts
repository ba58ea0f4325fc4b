/** The long-running roles, each loading only its own code when it starts. */
import { existsSync } from 'node:fs';

/**
 * The worker bundled by `npm run build` (scripts/bundle-worker.mjs), beside
 * the compiled CLI: dist/bundle/worker.js. One file loads in about half the
 * time of the module graph, which is most of a worker's time from spawn to
 * listed online. From the sources (bin/flota.mjs) there is none.
 */
const WORKER_BUNDLE = new URL('../bundle/worker.js', import.meta.url);

type WorkerMain = typeof import('../worker/src/main.ts');

function loadWorkerMain(): Promise<WorkerMain> {
  if (existsSync(WORKER_BUNDLE)) return import(WORKER_BUNDLE.href) as Promise<WorkerMain>;
  return import('../worker/src/main.ts');
}

export const ROLES = {
  master: async (): Promise<void> => {
    const { runMasterFromEnv } = await import('../master/src/main.ts');
    await runMasterFromEnv();
  },
  worker: async (): Promise<void> => {
    const { runWorkerFromEnv } = await loadWorkerMain();
    await runWorkerFromEnv();
  },
} as const;
