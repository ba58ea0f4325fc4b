/**
 * Wiring for the autoscaler: `flota autoscale` (its own process, e.g. a Swarm
 * service next to the managers) and `flota up --autoscale` (inside the
 * supervisor, with the local driver) both start it here.
 */
import { hostname } from 'node:os';
import { type Clock, systemClock } from '../../common/clock.ts';
import { childExited, spawnRole, stopChild } from '../../common/flota-process.ts';
import { createLogger, type Logger } from '../../common/logger.ts';
import { Autoscaler } from './autoscaler.ts';
import { type AutoscalerConfig, hostPoolName, loadAutoscalerConfig } from './config.ts';
import type { ScaleDriver } from './drivers/driver.ts';
import { LocalDriver } from './drivers/local.ts';
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
  clock?: Clock;
}

export async function startAutoscaler(
  config: AutoscalerConfig,
  { driver, log, clock = systemClock }: AutoscalerDepsIn,
): Promise<AutoscalerHandle> {
  const metrics = new AutoscalerMetrics();
  const autoscaler = new Autoscaler({
    pools: config.pools,
    driver,
    source: masterSource(config.AUTOSCALE_MASTER_URL, config.AUTOSCALE_API_TOKEN),
    clock,
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

/** The local driver with real `flota worker` processes, started from `env`. */
export function localWorkerDriver(env: NodeJS.ProcessEnv, log: Logger): LocalDriver {
  return new LocalDriver({
    log,
    start: (id, pool) => {
      const child = spawnRole('worker', { ...env, WORKER_ID: id, WORKER_KIND: pool.capability });
      return { exited: childExited(child), stop: () => stopChild(child) };
    },
  });
}

/** Loaded only when asked for: the local driver never pays for the Docker client. */
async function swarmDriver(config: AutoscalerConfig, log: Logger): Promise<ScaleDriver> {
  const { createSwarmDriver } = await import('./drivers/swarm.ts');
  return createSwarmDriver({
    socketPath: config.DOCKER_SOCKET,
    stack: config.AUTOSCALE_STACK,
    log,
  });
}

/**
 * `flota autoscale`: runs until SIGINT or SIGTERM. `env` is the CLI's
 * environment (cli/config.ts); local workers are started with it too.
 */
export async function runAutoscalerFromEnv(env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadAutoscalerConfig(env, {}, hostPoolName(hostname()));
  const { logger: log } = createLogger({ source: 'autoscaler', level: config.LOG_LEVEL });
  const driver =
    config.AUTOSCALE_DRIVER === 'swarm'
      ? await swarmDriver(config, log)
      : localWorkerDriver(env, log);
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
