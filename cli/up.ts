/**
 * `flota up` (what `npm start` runs): a small supervisor. It starts the master
 * (embedded broker and store) and $WORKERS local workers as child processes,
 * each in its own process group, so a terminal's Ctrl-C reaches only this
 * process — which then stops the workers (they finish in-flight tasks and
 * report them), then the master (which commits them and stops PostgreSQL).
 * Every child has an IPC channel and shuts itself down if this process dies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { loadMasterConfig } from '../master/src/config.ts';
import { type MasterReady, masterReadySchema } from '../proto/src/ipc.ts';

const BIN = fileURLToPath(new URL('../bin/flota.mjs', import.meta.url));
/** Local echo workers stream visibly by default; set ECHO_DELAY_MS=0 for raw speed. */
const DEMO_ECHO_DELAY_MS = '25';
/** Longer than a worker's default SHUTDOWN_GRACE_MS (10 s), so in-flight work can finish. */
const CHILD_STOP_GRACE_MS = 15_000;

function spawnRole(role: 'master' | 'worker', env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [BIN, role], {
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

async function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  const done = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_GRACE_MS);
  await done;
  clearTimeout(timer);
}

function waitReady(master: ChildProcess): Promise<MasterReady> {
  return new Promise((resolve, reject) => {
    master.on('message', (message) => {
      const ready = masterReadySchema.safeParse(message);
      if (ready.success) resolve(ready.data);
    });
    master.once('exit', (code) =>
      reject(new Error(`the master exited during start-up (code ${code})`)),
    );
  });
}

export async function runUp(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadMasterConfig(env);
  const master = spawnRole('master', env);
  const workers: ChildProcess[] = [];
  let stopping = false;

  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.error(`\nflota: ${why} — stopping workers, then the master…`);
    await Promise.all(workers.map(stopChild));
    await stopChild(master);
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));

  let ready: MasterReady;
  try {
    ready = await waitReady(master);
  } catch (err) {
    console.error(`flota: ${(err as Error).message}`);
    process.exit(1);
  }
  master.on('exit', (code, signal) => {
    if (!stopping) void shutdown(`the master exited (code ${code}, signal ${signal})`, 1);
  });

  const workerEnv: NodeJS.ProcessEnv = {
    ...env,
    MQTT_URL: ready.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${ready.grpcPort}`,
    MQTT_PREFIX: config.MQTT_PREFIX,
    ECHO_DELAY_MS: env.ECHO_DELAY_MS ?? DEMO_ECHO_DELAY_MS,
    LOG_LEVEL: config.LOG_LEVEL,
  };
  for (let i = 1; i <= config.WORKERS; i++) {
    const id = env.WORKER_ID ? `${env.WORKER_ID}-${i}` : `local-${i}`;
    const child = spawnRole('worker', { ...workerEnv, WORKER_ID: id });
    child.on('exit', (code, signal) => {
      if (!stopping) console.error(`flota: worker ${id} exited (code ${code}, signal ${signal})`);
    });
    workers.push(child);
  }

  const port = new URL(ready.mqttUrl).port;
  console.error(
    [
      '',
      `  flota is running — open ${ready.httpUrl}`,
      `  REST API  ${ready.httpUrl}/api/tasks · ${config.WORKERS} local workers`,
      `  MQTT      ${ready.mqttUrl}   (mosquitto_sub -h localhost -p ${port} -t '${config.MQTT_PREFIX}/logs/#' -v)`,
      `  gRPC      127.0.0.1:${ready.grpcPort}`,
      '  Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}
