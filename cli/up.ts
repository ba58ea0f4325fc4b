/**
 * `flota up` (what `npm start` runs): a small supervisor. It starts the master
 * (embedded broker and store) and local workers as child processes, each in
 * its own process group, so a terminal's Ctrl-C reaches only this process —
 * which then stops the workers (they finish in-flight tasks and report them),
 * then the master (which commits them and stops PostgreSQL). Every child has
 * an IPC channel and shuts itself down if this process dies.
 *
 * Workers: $WORKERS of them, or with `--autoscale` as many as the load asks
 * for, between AUTOSCALE_MIN and AUTOSCALE_MAX (the local driver). Each gets
 * its own credential (WORKER_TOKEN), issued through the master's admin API
 * with the admin token the master reports when it is ready.
 */
import type { ChildProcess } from 'node:child_process';
import {
  type AutoscalerConfig,
  loadAutoscalerConfig,
  type PoolSpec,
} from '../autoscaler/src/config.ts';
import type { ScaleDriver } from '../autoscaler/src/drivers/driver.ts';
import {
  type LocalWorkerOptions,
  localWorkerDriver,
  startAutoscaler,
} from '../autoscaler/src/main.ts';
import { ConfigError, FlotaError, StartupError } from '../common/errors.ts';
import { spawnRole, stopChild } from '../common/flota-process.ts';
import { createLogger } from '../common/logger.ts';
import {
  apiTokensOf,
  isLoopbackHost,
  loadMasterConfig,
  type MasterConfig,
} from '../master/src/config.ts';
import {
  type MasterFailed,
  type MasterReady,
  masterFailedSchema,
  masterReadySchema,
  masterStatusSchema,
} from '../proto/src/ipc.ts';
import { openUpConsole, type UpConsole } from './terminal/up-console.ts';
import { issueWorkerCredential } from './token.ts';

/** Local echo workers stream visibly by default; set ECHO_DELAY_MS=0 for raw speed. */
const DEMO_ECHO_DELAY_MS = '25';

export interface UpOptions {
  autoscale?: boolean;
}

/**
 * Resolves when the master reports it is ready. Rejects with the error it
 * reported (a port in use, a data dir it cannot write, …) when start-up
 * failed for a reason a person can fix, or with its exit otherwise — its own
 * output then says why (a stack: a bug).
 */
function waitReady(master: ChildProcess): Promise<MasterReady> {
  return new Promise((resolve, reject) => {
    let failed: MasterFailed | undefined;
    master.on('message', (message) => {
      const ready = masterReadySchema.safeParse(message);
      if (ready.success) resolve(ready.data);
      const failure = masterFailedSchema.safeParse(message);
      if (failure.success) failed = failure.data;
    });
    // 'close' comes after the IPC channel is drained, so a failure sent just before exiting is in.
    master.once('close', (code, signal) => {
      if (failed) reject(reportedError(failed));
      else {
        const how = signal ? `signal ${signal}` : `code ${code}`;
        reject(new FlotaError('master_exited', `the master exited during start-up (${how})`));
      }
    });
    // A failed spawn (EAGAIN, ENOENT, …) emits 'error' and no 'exit'.
    master.once('error', (err) =>
      reject(new FlotaError('spawn_failed', `cannot start the master: ${err.message}`)),
    );
  });
}

/** The master's start-up error, rebuilt on this side of the IPC channel so it prints (and exits) the same. */
function reportedError(failed: MasterFailed): FlotaError {
  if (failed.code === 'config_invalid') return new ConfigError(failed.message);
  if (failed.hint !== undefined) {
    return new StartupError(failed.code, failed.message, { hint: failed.hint });
  }
  return new FlotaError(failed.code, failed.message);
}

interface Fleet {
  driver: ScaleDriver;
  /** What the banner says about the workers. */
  summary: string;
  close(): Promise<void>;
}

/** A fixed pool of $WORKERS, named `local-1…` (or `$WORKER_ID-1…`). */
async function fixedFleet(
  env: NodeJS.ProcessEnv,
  config: MasterConfig,
  workers: LocalWorkerOptions,
  out: UpConsole,
): Promise<Fleet> {
  const { logger } = createLogger({
    source: 'supervisor',
    level: config.LOG_LEVEL,
    destination: out.logDestination,
  });
  const driver = localWorkerDriver(env, logger, workers);
  const pool: PoolSpec = {
    name: 'local',
    capability: 'cpu',
    workerPrefix: env.WORKER_ID ? `${env.WORKER_ID}-` : 'local-',
    // Never consulted: nothing decides for a fixed pool.
    policy: {
      ...{ min: config.WORKERS, max: config.WORKERS, stepUp: 1, stepDown: 1 },
      ...{ cooldownUpMs: 0, cooldownDownMs: 0, upAfterDownMs: 0 },
      ...{ targetUtilisation: 1, slotsPerWorker: 1 },
    },
  };
  await driver.scale(pool, config.WORKERS, []);
  return {
    driver,
    summary: `${config.WORKERS} local workers`,
    close: () => driver.close(),
  };
}

/** Local workers sized by the autoscaler; its /status and /metrics are printed in the banner. */
async function autoscaledFleet(
  env: NodeJS.ProcessEnv,
  config: MasterConfig,
  scaling: AutoscalerConfig,
  workers: LocalWorkerOptions,
  out: UpConsole,
): Promise<Fleet> {
  const { logger } = createLogger({
    source: 'autoscaler',
    level: scaling.LOG_LEVEL,
    destination: out.logDestination,
  });
  const driver = localWorkerDriver(env, logger, workers);
  for (const pool of scaling.pools) {
    const { min, max } = pool.policy;
    await driver.scale(pool, Math.min(max, Math.max(min, config.WORKERS)), []);
  }
  const handle = await startAutoscaler(scaling, { driver, log: logger });
  const bounds = scaling.pools.map((p) => `${p.name} ${p.policy.min}–${p.policy.max}`).join(', ');
  return {
    driver,
    summary: `autoscaled local workers (${bounds}) · status ${handle.statusUrl}/status`,
    close: () => handle.close(),
  };
}

/** `env` is the CLI's environment (cli/config.ts); the master and workers are started with it. */
export async function runUp(env: NodeJS.ProcessEnv, options: UpOptions = {}): Promise<void> {
  const config = loadMasterConfig(env);
  // Checked before anything starts, so a typo in AUTOSCALE_* costs nothing.
  const scaling = options.autoscale
    ? loadAutoscalerConfig(
        { ...env, AUTOSCALE_DRIVER: 'local' },
        { AUTOSCALE_API_TOKEN: apiTokensOf(config)[0]?.token ?? '' },
      )
    : undefined;
  // On a terminal, the children's JSON lines come through here to be shown as human lines.
  const out = openUpConsole(config.LOG_FORMAT, env);
  const master = spawnRole('master', env, out.childOutput);
  let fleet: Fleet | undefined;
  let stopping = false;

  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    out.endStatus();
    out.note(`\nflota: ${why} — stopping workers, then the master…`);
    await fleet?.close();
    let status = code;
    try {
      await stopChild(master);
    } catch (err) {
      out.note(`flota: cannot stop the master: ${(err as Error).message}`);
      status = 1;
    }
    // The children's last lines (`worker stopped`, `master stopped`) still on their way.
    await out.drained();
    process.exit(status);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));

  // A failed start-up is thrown to the CLI, which prints it once and exits.
  const ready = await waitReady(master);
  master.on('exit', (code, signal) => {
    if (!stopping) void shutdown(`the master exited (code ${code}, signal ${signal})`, 1);
  });

  const dial = dialHost(config.HOST);
  const workerEnv: NodeJS.ProcessEnv = {
    ...withoutMasterSecrets(env),
    MQTT_URL: ready.mqttUrl,
    MASTER_GRPC: `${dial}:${ready.grpcPort}`,
    MQTT_PREFIX: config.MQTT_PREFIX,
    ECHO_DELAY_MS: env.ECHO_DELAY_MS ?? DEMO_ECHO_DELAY_MS,
    LOG_LEVEL: config.LOG_LEVEL,
  };
  // Over TLS the workers trust the master's CA (or, self-signed, its certificate).
  const trust = config.TLS_CA?.path ?? config.TLS_CERT?.path;
  if (trust) workerEnv.TLS_CA = trust;
  if (!ready.adminToken && apiTokensOf(config).length > 0) {
    await shutdown(
      'API_TOKENS holds no admin token (tenant:token:admin), which flota up needs to issue its workers their credentials',
      1,
    );
    return;
  }
  // Each worker its own credential; the admin token never reaches a worker's environment.
  // Over TLS, trust what the master's certificate is signed by (or the certificate itself).
  const admin = {
    url: ready.httpUrl,
    token: ready.adminToken,
    ca: config.TLS_CA?.pem ?? config.TLS_CERT?.pem,
  };
  const workers: LocalWorkerOptions = {
    credentialFor: (workerId) => issueWorkerCredential(admin, workerId),
    output: out.childOutput,
  };
  try {
    fleet = scaling
      ? await autoscaledFleet(
          workerEnv,
          config,
          {
            ...scaling,
            AUTOSCALE_MASTER_URL: ready.httpUrl,
            AUTOSCALE_API_TOKEN: ready.adminToken ?? scaling.AUTOSCALE_API_TOKEN,
          },
          workers,
          out,
        )
      : await fixedFleet(workerEnv, config, workers, out);
  } catch (err) {
    await shutdown(`cannot start the workers: ${(err as Error).message}`, 1);
    return;
  }

  out.note(banner(ready, config, fleet.summary).join('\n'));
  master.on('message', (message) => {
    const status = masterStatusSchema.safeParse(message);
    if (status.success) out.status(status.data);
  });
}

/**
 * The master's own secrets, which its workers must not inherit: its broker
 * login (a worker would log in as the master), API tokens, the signing secret.
 */
const MASTER_SECRETS = [
  'MQTT_USERNAME',
  'MQTT_PASSWORD',
  'API_TOKENS',
  'API_TOKENS_FILE',
  'FLOTA_SECRET',
  'FLOTA_SECRET_FILE',
  'WORKER_TOKEN',
  'WORKER_JOIN_TOKEN',
  // A worker would present the master's certificate (and key) as its own client certificate.
  'TLS_CERT',
  'TLS_KEY',
];

function withoutMasterSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of MASTER_SECRETS) delete copy[name];
  return copy;
}

/** Where this machine dials a listener bound to `host` (a wildcard is reached on loopback). */
function dialHost(host: string): string {
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return local.includes(':') ? `[${local}]` : local;
}

/** Who can reach a listener bound to `host`, in words. */
function reach(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'all interfaces: reachable from the network';
  if (isLoopbackHost(host)) return 'this machine only; set HOST to open it to the network';
  return 'reachable from the network';
}

function banner(ready: MasterReady, config: MasterConfig, fleet: string): string[] {
  const mqtt = new URL(ready.mqttUrl);
  // Anyone may read the log topic without a login; over TLS, trusting the broker's CA.
  const ca = config.TLS_CA?.path ?? config.TLS_CERT?.path;
  const observer = [
    'mosquitto_sub',
    `-h ${mqtt.hostname.replace(/^\[|\]$/g, '')}`,
    `-p ${mqtt.port}`,
    ...(mqtt.protocol === 'mqtts:' && ca ? [`--cafile ${ca}`] : []),
    `-t '${config.MQTT_PREFIX}/logs/#' -v`,
  ].join(' ');
  return [
    '',
    `  flota is running — open ${ready.httpUrl}`,
    `  listening on ${config.HOST} (${reach(config.HOST)})`,
    `  REST API  ${ready.httpUrl}/api/tasks · ${fleet}`,
    `  MQTT      ${ready.mqttUrl}`,
    `  logs      ${observer}`,
    `  gRPC      ${dialHost(config.HOST)}:${ready.grpcPort}`,
    '  Ctrl-C to stop.',
    '',
  ];
}
