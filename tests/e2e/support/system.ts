/** Starts flota roles as processes and waits until they serve. */
import { issueWorkerCredential } from '../../../cli/token.ts';
import { freePort } from '../../helpers/free-port.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { waitForSystem } from './api.ts';
import { type FlotaProcess, spawnFlota } from './flota-process.ts';

const tail = (text: string) => text.slice(-3_000);

/** Why waiting for `p` is pointless, if it already exited. */
export function deadReason(p: FlotaProcess): string | undefined {
  if (!p.hasExited()) return undefined;
  const { exitCode, signalCode } = p.child;
  return `${p.name} exited early (code ${exitCode}, signal ${signalCode}):\n${tail(p.stderr())}\n${tail(p.stdout())}`;
}

export interface UpSystem {
  up: FlotaProcess;
  baseUrl: string;
  mqttPort: number;
  grpcPort: number;
}

export interface UpOptions {
  /** After `up`, e.g. `--autoscale`. */
  args?: string[];
  /** Workers to wait for; local-1 and local-2 by default. */
  workers?: string[];
}

/** `npm start`: `node bin/flota.mjs up` with two local workers, on free ports. */
export async function startUp(
  dataDir: string,
  env: Record<string, string>,
  options: UpOptions = {},
): Promise<UpSystem> {
  const [port, grpcPort, mqttPort] = [await freePort(), await freePort(), await freePort()];
  const up = spawnFlota({
    name: 'flota up',
    args: ['up', ...(options.args ?? [])],
    env: {
      PORT: String(port),
      GRPC_PORT: String(grpcPort),
      MQTT_PORT: String(mqttPort),
      FLOTA_DATA_DIR: dataDir,
      WORKERS: '2',
      ...env,
    },
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForSystem(baseUrl, options.workers ?? ['local-1', 'local-2'], () => deadReason(up));
  return { up, baseUrl, mqttPort, grpcPort };
}

export interface MasterProcess {
  master: FlotaProcess;
  baseUrl: string;
  grpcPort: number;
}

/** `flota master` against an external broker and store. */
export async function startMasterProcess(env: Record<string, string>): Promise<MasterProcess> {
  const [port, grpcPort] = [await freePort(), await freePort()];
  const master = spawnFlota({
    name: 'flota master',
    args: ['master'],
    env: { HOST: '127.0.0.1', PORT: String(port), GRPC_PORT: String(grpcPort), ...env },
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForSystem(baseUrl, [], () => deadReason(master));
  return { master, baseUrl, grpcPort };
}

/** Where a worker gets its credential: the master's admin API (`flota token worker`). */
export interface CredentialSource {
  baseUrl: string;
  /** Admin API token; none for a loopback master without API_TOKENS. */
  adminToken?: string;
}

/**
 * `flota worker` with its own credential (WORKER_TOKEN) issued by the master,
 * unless `env` brings one; resolves once it logged that it started.
 */
export async function startWorkerProcess(
  workerId: string,
  env: Record<string, string>,
  master: CredentialSource,
): Promise<FlotaProcess> {
  const token =
    env.WORKER_TOKEN ??
    (await issueWorkerCredential({ url: master.baseUrl, token: master.adminToken }, workerId));
  const worker = spawnFlota({
    name: `flota worker ${workerId}`,
    args: ['worker'],
    env: { WORKER_ID: workerId, ...env, WORKER_TOKEN: token },
  });
  const outcome = await waitFor(
    () => deadReason(worker) ?? (worker.stdout().includes('"worker started"') ? 'ok' : undefined),
    { timeoutMs: 60_000, intervalMs: 50, what: `worker ${workerId} to start` },
  );
  if (outcome !== 'ok') throw new Error(outcome);
  return worker;
}
