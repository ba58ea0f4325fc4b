/**
 * Wiring for the autoscaler: `flota autoscale` (its own process, e.g. a Swarm
 * service next to the managers) and `flota up --autoscale` (inside the
 * supervisor, with the local driver) both start it here.
 */
import { hostname } from 'node:os';
import { type ChildOutput, childExited, spawnRole, stopChild } from '../../common/flota-process.ts';
import { createLogger, type Logger } from '../../common/logger.ts';
import { RESTART_EXIT_CODE } from '../../proto/src/schemas/worker.ts';
import { Autoscaler } from './autoscaler.ts';
import { type AutoscalerConfig, hostPoolName, loadAutoscalerConfig } from './config.ts';
import type { ScaleDriver } from './drivers/driver.ts';
import { LocalDriver, type WorkerProcess } from './drivers/local.ts';
import { AutoscalerMetrics } from './metrics.ts';
import { masterSource } from './observe.ts';
import { startStatusServer } from './server.ts';

export interface AutoscalerHandle {
  autoscaler: Autoscaler;
  driver: ScaleDriver;
  /** Where /status, /metrics and /healthz answer. */
  statusUrl: string;
  /** Stops deciding, then the driver (local workers drain and exit), then the status server. */
  close(): Promise<void>;
}

export interface AutoscalerDepsIn {
  driver: ScaleDriver;
  log: Logger;
}

export async function startAutoscaler(
  config: AutoscalerConfig,
  { driver, log }: AutoscalerDepsIn,
): Promise<AutoscalerHandle> {
  const metrics = new AutoscalerMetrics(config.pools.map((pool) => pool.name));
  const autoscaler = new Autoscaler({
    pools: config.pools,
    driver,
    source: masterSource(config.AUTOSCALE_MASTER_URL, config.AUTOSCALE_API_TOKEN),
    log,
    metrics,
    intervalMs: config.AUTOSCALE_INTERVAL_MS,
  });
  const server = await startStatusServer(
    autoscaler,
    metrics,
    config.AUTOSCALE_HOST,
    config.AUTOSCALE_PORT,
  );
  log.info(
    {
      driver: driver.name,
      master: config.AUTOSCALE_MASTER_URL,
      pools: config.pools.map((p) => `${p.name}:${p.capability}:${p.policy.min}-${p.policy.max}`),
      status: server.url,
    },
    'autoscaler started',
  );
  autoscaler.start();
  let closing: Promise<void> | undefined;
  return {
    autoscaler,
    driver,
    statusUrl: server.url,
    close: () => {
      closing ??= (async () => {
        await autoscaler.close();
        await driver.close();
        await server.close();
      })();
      return closing;
    },
  };
}

export interface LocalWorkerOptions {
  /**
   * Issues each worker its own credential, passed as WORKER_TOKEN; the worker
   * starts once it has it. Without this, workers start with `env` as it is.
   */
  credentialFor?: (workerId: string) => Promise<string>;
  /** Takes each worker's stdout and stderr; without it they write to this process's. */
  output?: ChildOutput;
}

function spawnWorker(env: NodeJS.ProcessEnv, output?: ChildOutput): WorkerProcess {
  const child = spawnRole('worker', env, output);
  return {
    exited: childExited(child),
    stop: () => stopChild(child),
    restartRequested: () => child.exitCode === RESTART_EXIT_CODE,
  };
}

/**
 * A worker that starts once its credential is issued. If that fails, `exited`
 * rejects with why (the driver drops it; the next round may start another);
 * stopped before it started, it never starts.
 */
export function credentialedWorker(
  env: NodeJS.ProcessEnv,
  credential: Promise<string>,
  spawn: (env: NodeJS.ProcessEnv) => WorkerProcess = spawnWorker,
): WorkerProcess {
  let stopped = false;
  const started = credential.then((token) =>
    stopped ? undefined : spawn({ ...env, WORKER_TOKEN: token }),
  );
  let spawned: WorkerProcess | undefined;
  return {
    exited: started.then((worker) => {
      spawned = worker;
      return worker?.exited;
    }),
    restartRequested: () => spawned?.restartRequested?.() === true,
    stop: async () => {
      stopped = true;
      const worker = await started.catch(() => undefined);
      await worker?.stop();
    },
  };
}

/** The local driver with real `flota worker` processes, started from `env`. */
export function localWorkerDriver(
  env: NodeJS.ProcessEnv,
  log: Logger,
  options: LocalWorkerOptions = {},
): LocalDriver {
  const { credentialFor, output } = options;
  const spawn = (workerEnv: NodeJS.ProcessEnv) => spawnWorker(workerEnv, output);
  return new LocalDriver({
    log,
    start: (id, pool) => {
      const workerEnv = { ...env, WORKER_ID: id, WORKER_KIND: pool.capability };
      return credentialFor
        ? credentialedWorker(workerEnv, credentialFor(id), spawn)
        : spawn(workerEnv);
    },
  });
}

const masterOf = (config: AutoscalerConfig) => ({
  url: config.AUTOSCALE_MASTER_URL,
  token: config.AUTOSCALE_API_TOKEN || undefined,
});

/** Loaded only when asked for: the local driver never pays for the Docker client. */
async function swarmDriver(config: AutoscalerConfig, log: Logger): Promise<ScaleDriver> {
  const { createSwarmDriver } = await import('./drivers/swarm.ts');
  return createSwarmDriver({
    socketPath: config.DOCKER_SOCKET,
    stack: config.AUTOSCALE_STACK,
    log,
  });
}

/** Asks the master at `url` (as the holder of `token`) for a worker's credential. */
export type CredentialIssuer = (
  master: { url: string; token?: string },
  workerId: string,
) => Promise<string>;

/**
 * `flota autoscale`: runs until SIGINT or SIGTERM. `env` is the CLI's
 * environment (cli/config.ts); local workers are started with it too, each
 * with its own credential from `issueCredential` (AUTOSCALE_API_TOKEN must
 * then be an admin token, when the master sets API_TOKENS).
 */
export async function runAutoscalerFromEnv(
  env: NodeJS.ProcessEnv,
  issueCredential?: CredentialIssuer,
): Promise<void> {
  const config = loadAutoscalerConfig(env, {}, hostPoolName(hostname()));
  const { logger: log } = createLogger({ source: 'autoscaler', level: config.LOG_LEVEL });
  const driver =
    config.AUTOSCALE_DRIVER === 'swarm'
      ? await swarmDriver(config, log)
      : localWorkerDriver(env, log, {
          credentialFor: issueCredential
            ? (workerId) => issueCredential(masterOf(config), workerId)
            : undefined,
        });
  const handle = await startAutoscaler(config, { driver, log });
  const stop = (signal: string) => {
    log.info({ signal }, 'autoscaler stopping');
    handle.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: String(err) }, 'autoscaler did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
