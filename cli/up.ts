/**
 * `flota up` (what `npm start` runs): the master in this process with its
 * embedded broker and store, plus $WORKERS local worker processes. Ctrl-C
 * stops the workers first, then the master (which stops PostgreSQL).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { loadMasterConfig } from '../master/src/config.ts';
import { startMaster } from '../master/src/main.ts';

const BIN = fileURLToPath(new URL('../bin/flota.mjs', import.meta.url));
/** Local echo workers stream visibly by default; set ECHO_DELAY_MS=0 for raw speed. */
const DEMO_ECHO_DELAY_MS = '25';
const WORKER_STOP_GRACE_MS = 5_000;

function spawnWorker(index: number, env: NodeJS.ProcessEnv): ChildProcess {
  // Own process group: a terminal's Ctrl-C reaches only `up`, which stops the workers once, in
  // order. The IPC channel lets a worker notice if `up` dies without cleaning up.
  return spawn(process.execPath, [BIN, 'worker'], {
    env: { ...env, WORKER_ID: env.WORKER_ID ? `${env.WORKER_ID}-${index}` : `local-${index}` },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), WORKER_STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

export async function runUp(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadMasterConfig(env);
  const master = await startMaster(config);
  const workerEnv: NodeJS.ProcessEnv = {
    ...env,
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    MQTT_PREFIX: config.MQTT_PREFIX,
    ECHO_DELAY_MS: env.ECHO_DELAY_MS ?? DEMO_ECHO_DELAY_MS,
    LOG_LEVEL: config.LOG_LEVEL,
  };
  const workers = Array.from({ length: config.WORKERS }, (_, i) => spawnWorker(i + 1, workerEnv));
  let stopping = false;
  for (const child of workers) {
    child.on('exit', (code, signal) => {
      if (!stopping) console.error(`flota: a local worker exited (code ${code}, signal ${signal})`);
    });
  }

  console.error(
    [
      '',
      `  flota is running — open ${master.httpUrl}`,
      `  REST API  ${master.httpUrl}/api/tasks · workers: ${config.WORKERS} local`,
      `  MQTT      ${master.mqttUrl}   (mosquitto_sub -h localhost -p ${new URL(master.mqttUrl).port} -t '${config.MQTT_PREFIX}/logs/#' -v)`,
      `  gRPC      127.0.0.1:${master.grpcPort}`,
      '  Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`\nflota: ${signal} — stopping workers, then the master…`);
    await Promise.all(workers.map(stopChild));
    await master.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
