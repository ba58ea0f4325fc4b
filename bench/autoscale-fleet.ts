/**
 * The workers of one autoscaling run: a fixed number of `flota worker`
 * processes (bench/system.ts), or a pool sized by the autoscaler running in
 * this process with the local driver, as `flota up --autoscale` runs it
 * (autoscaler/src/main.ts). The driver is wrapped so every scaling the
 * autoscaler applies is timed here, on this process's clock.
 */
import { type AutoscalerConfig, loadAutoscalerConfig } from '../autoscaler/src/config.ts';
import type { ScaleDriver } from '../autoscaler/src/drivers/driver.ts';
import { localWorkerDriver, startAutoscaler } from '../autoscaler/src/main.ts';
import { createLogger, type LogLevel } from '../common/logger.ts';
import { autoscalerStatusSchema, type PoolStatus } from '../proto/src/schemas/autoscaler.ts';
import type { Cleanup } from './cleanup.ts';
import { baseChildEnv } from './config.ts';
import { deadReason } from './processes.ts';
import {
  type MasterProcess,
  spawnWorker,
  waitForOnline,
  workerCredential,
  workerCredentials,
} from './system.ts';

/** The local driver names its workers `<pool>-<n>`. */
export const POOL_NAME = 'bench';

export interface WorkerSpec {
  slots: number;
  taskMs: number;
  logLevel: LogLevel;
}

export interface AutoscaleSpec {
  min: number;
  max: number;
  intervalMs: number;
  cooldownUpMs: number;
  cooldownDownMs: number;
  stepUp: number;
  stepDown: number;
}

/** One scaling the autoscaler applied; `at` is performance.now(). */
export interface Scaling {
  at: number;
  from: number;
  to: number;
}

export interface Fleet {
  /** Workers the driver runs or was told to run, for an autoscaled fleet; else the fixed count. */
  replicas(): Promise<number>;
  /** Every scaling applied so far (none for a fixed fleet). */
  readonly scalings: readonly Scaling[];
  /** The autoscaler's last observation and decision, from its /status. */
  status(): Promise<PoolStatus | undefined>;
  /** Stops every worker (they drain first) and the autoscaler. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 90_000;

function workerEnv(master: MasterProcess, spec: WorkerSpec): Record<string, string> {
  return {
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    SLOTS: String(spec.slots),
    PROVIDER: 'echo',
    MODELS: 'echo',
    ECHO_DELAY_MS: String(spec.taskMs),
    ECHO_CHUNK_SIZE: '256',
    LOG_LEVEL: spec.logLevel,
  };
}

/** `count` echo workers, all online before it resolves. */
export async function startFixedFleet(
  cleanup: Cleanup,
  master: MasterProcess,
  spec: WorkerSpec,
  count: number,
): Promise<Fleet> {
  const env = workerEnv(master, spec);
  const ids = Array.from({ length: count }, (_, i) => `fixed-${i + 1}`);
  const credentials = await workerCredentials(master, ids);
  const workers = ids.map((id) =>
    spawnWorker(cleanup, {
      id,
      credential: credentials.get(id) as string,
      mqttUrl: master.mqttUrl,
      grpcPort: master.grpcPort,
      slots: spec.slots,
      logLevel: spec.logLevel,
      env,
    }),
  );
  const stop = async () => {
    await Promise.all(workers.map((w) => w.stop()));
  };
  try {
    await waitForOnline(master.baseUrl, (id) => id.startsWith('fixed-'), count, {
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 25,
      alive: () => workers.map((w) => deadReason(w.proc)).find((why) => why !== undefined),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { replicas: async () => count, scalings: [], status: async () => undefined, stop };
}

/** Records every scale() the autoscaler makes, with the replicas before it. */
function recording(inner: ScaleDriver, scalings: Scaling[]): ScaleDriver {
  return {
    name: inner.name,
    replicas: (pool) => inner.replicas(pool),
    async scale(pool, replicas, workers) {
      const from = await inner.replicas(pool);
      scalings.push({ at: performance.now(), from, to: replicas });
      await inner.scale(pool, replicas, workers);
    },
    close: () => inner.close(),
  };
}

/**
 * `min` workers of the pool `bench:cpu:<min>-<max>`, online before it
 * resolves, and the autoscaler deciding every `intervalMs` from then on.
 */
export async function startAutoscaledFleet(
  cleanup: Cleanup,
  master: MasterProcess,
  spec: WorkerSpec,
  scaling: AutoscaleSpec,
): Promise<Fleet> {
  const config: AutoscalerConfig = loadAutoscalerConfig({
    AUTOSCALE_DRIVER: 'local',
    AUTOSCALE_MASTER_URL: master.baseUrl,
    AUTOSCALE_POOLS: `${POOL_NAME}:cpu:${scaling.min}-${scaling.max}`,
    AUTOSCALE_INTERVAL_MS: String(scaling.intervalMs),
    AUTOSCALE_COOLDOWN_UP_MS: String(scaling.cooldownUpMs),
    AUTOSCALE_COOLDOWN_DOWN_MS: String(scaling.cooldownDownMs),
    AUTOSCALE_STEP_UP: String(scaling.stepUp),
    AUTOSCALE_STEP_DOWN: String(scaling.stepDown),
    AUTOSCALE_SLOTS_PER_WORKER: String(spec.slots),
    AUTOSCALE_PORT: '0',
    AUTOSCALE_HOST: '127.0.0.1',
    LOG_LEVEL: spec.logLevel,
  });
  const pool = config.pools[0];
  if (!pool) throw new Error('the autoscaler configuration has no pool');
  // stdout carries the results table: the autoscaler's own log lines go to stderr.
  const { logger: log } = createLogger({
    source: 'autoscaler',
    level: spec.logLevel,
    destination: process.stderr,
  });
  const scalings: Scaling[] = [];
  // As `flota up` does: each worker its own credential from the master, issued as it starts.
  const local = localWorkerDriver({ ...baseChildEnv(), ...workerEnv(master, spec) }, log, {
    credentialFor: (workerId) => workerCredential(master, workerId),
  });
  const driver = recording(local, scalings);
  const stopDriver = cleanup.add('autoscaled workers', () => local.close());
  // As `flota up --autoscale` does: the pool starts at its minimum, then the autoscaler decides.
  await local.scale(pool, scaling.min, []);
  try {
    await waitForOnline(master.baseUrl, (id) => id.startsWith(pool.workerPrefix), scaling.min, {
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 25,
    });
  } catch (err) {
    await stopDriver();
    throw err;
  }
  const handle = await startAutoscaler(config, { driver, log });
  const stopAutoscaler = cleanup.add('autoscaler', () => handle.close());
  return {
    replicas: () => local.replicas(pool),
    scalings,
    async status() {
      const res = await fetch(`${handle.statusUrl}/status`, { signal: AbortSignal.timeout(5_000) });
      return autoscalerStatusSchema.parse(await res.json()).pools.find((p) => p.pool === pool.name);
    },
    async stop() {
      await stopAutoscaler();
      await stopDriver();
    },
  };
}
