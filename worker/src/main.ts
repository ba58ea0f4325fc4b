/** Entry points: `startWorker` for code and tests, `runWorkerFromEnv` for the CLI. */
import type { FlotaLogger } from '../../common/logger.ts';
import { RESTART_EXIT_CODE } from '../../proto/src/schemas/worker.ts';
import { startWorkerAgent, type WorkerDeps, type WorkerHandle } from './agent.ts';
import { loadWorkerConfig, type WorkerConfig } from './config.ts';

export type { WorkerDeps, WorkerHandle } from './agent.ts';
export { loadWorkerConfig, type WorkerConfig, workerConfigSchema } from './config.ts';

export function startWorker(
  config: WorkerConfig,
  deps: { logger?: FlotaLogger } & WorkerDeps = {},
): Promise<WorkerHandle> {
  return startWorkerAgent(config, deps);
}

/**
 * Loads the configuration from the environment, starts the worker and closes
 * it on SIGINT/SIGTERM (a second signal exits at once). Exits the process
 * once the worker has closed.
 */
export async function runWorkerFromEnv(): Promise<void> {
  const config = loadWorkerConfig();
  const handle = await startWorker(config);
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(130);
    signalled = true;
    process.stderr.write(`flota worker ${handle.id}: ${signal}, shutting down\n`);
    void handle.close();
  };
  // Started by `flota up` with an IPC channel: if that parent dies, do not linger as an orphan.
  const onParentGone = () => void handle.close();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('disconnect', onParentGone);
  await handle.done;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('disconnect', onParentGone);
  if (process.connected) process.disconnect();
  // Everything the worker owns is closed. What may still hold the event loop is not its own:
  // a name look-up of a master or broker that was removed with it kept a container alive
  // for 13 s after SIGTERM when its whole stack was removed at once.
  // Asked by the master to restart: a status its supervisor restarts (docs/OPERATIONS.md).
  process.exit(handle.restartRequested ? RESTART_EXIT_CODE : (process.exitCode ?? 0));
}
