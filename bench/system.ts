/**
 * The system under test, as separate processes: Redis and Mosquitto from
 * their binaries on free loopback ports (the test helpers), `flota master`
 * and `flota worker` children started with their environment variables.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { issueWorkerCredential } from '../cli/token.ts';
import { freePort } from '../tests/helpers/free-port.ts';
import { startMosquitto } from '../tests/helpers/mosquitto-server.ts';
import { startRedis } from '../tests/helpers/redis-server.ts';
import { waitFor } from '../tests/helpers/wait-for.ts';
import type { Cleanup } from './cleanup.ts';
import { deadReason, type FlotaProcess, spawnFlota } from './processes.ts';

export type BrokerKind = 'mosquitto' | 'embedded';

/** A temporary directory removed by the cleanup. */
export async function tempDir(cleanup: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function startRedisServer(cleanup: Cleanup): Promise<{ url: string }> {
  // Its working directory: a smoke test finds the benchmark's own Redis by it.
  const dir = await tempDir(cleanup, 'flota-bench-redis-');
  const redis = await startRedis({ dir });
  cleanup.add('redis-server', () => redis.stop());
  return redis;
}

/** A Mosquitto for one broker phase; returns its URL and how to stop it early. */
export async function startMosquittoServer(
  cleanup: Cleanup,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const mosquitto = await startMosquitto();
  const stop = cleanup.add('mosquitto', () => mosquitto.stop());
  return { url: mosquitto.url, stop };
}

export interface MasterProcess {
  proc: FlotaProcess;
  baseUrl: string;
  grpcPort: number;
  /** The broker workers use: MQTT_URL, or the master's embedded one. */
  mqttUrl: string;
  stop: () => Promise<void>;
}

export interface MasterOptions {
  redisUrl: string;
  /** External broker; undefined = the master's embedded aedes. */
  mqttUrl?: string;
  namespace: string;
  dataDir: string;
  logLevel: string;
  /** Extra master variables (e.g. DISPATCH_POLICY). */
  env?: Record<string, string>;
  nodeArgs?: string[];
}

/** `flota master` on free ports; resolves once /readyz answers 200. Retries a lost port race. */
export async function startMasterProcess(
  cleanup: Cleanup,
  opts: MasterOptions,
): Promise<MasterProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port, grpcPort, mqttPort] = [await freePort(), await freePort(), await freePort()];
    const proc = spawnFlota({
      name: 'flota master',
      role: 'master',
      nodeArgs: opts.nodeArgs,
      env: {
        HOST: '127.0.0.1',
        PORT: String(port),
        GRPC_PORT: String(grpcPort),
        MQTT_PORT: String(mqttPort),
        QUEUE_URL: opts.redisUrl,
        QUEUE_NAMESPACE: opts.namespace,
        FLOTA_DATA_DIR: opts.dataDir,
        LOG_LEVEL: opts.logLevel,
        // A benchmark measures the system's throughput, not the per-address request limit.
        RATE_LIMIT_RPM: '0',
        ...(opts.mqttUrl ? { MQTT_URL: opts.mqttUrl } : {}),
        ...opts.env,
      },
    });
    const stop = cleanup.add('flota master', () => proc.stop());
    const baseUrl = `http://127.0.0.1:${port}`;
    try {
      const outcome = await waitFor(
        async () => {
          const dead = deadReason(proc);
          if (dead) return { dead };
          const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
          return res.status === 200 ? { dead: undefined } : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 50, what: 'the master to be ready' },
      );
      if (outcome.dead) throw new Error(outcome.dead);
      const mqttUrl = opts.mqttUrl ?? `mqtt://127.0.0.1:${mqttPort}`;
      return { proc, baseUrl, grpcPort, mqttUrl, stop };
    } catch (err) {
      lastError = err;
      await stop();
      // Only a lost race for a port is worth another try.
      if (!/EADDRINUSE|unavailable \(set/.test(proc.stderr() + proc.stdout())) break;
    }
  }
  throw lastError;
}

/** How many credentials are asked for at once, so a thousand do not become a thousand open requests. */
const ISSUE_CONCURRENCY = 16;

/**
 * A worker's own credential (its WORKER_TOKEN), asked of the master's admin
 * API as `flota token worker` does; the benchmark's master is on loopback
 * without API_TOKENS, so no admin token is needed.
 */
export function workerCredential(master: { baseUrl: string }, workerId: string): Promise<string> {
  return issueWorkerCredential({ url: master.baseUrl }, workerId);
}

/** A credential for each of `workerIds` (id → credential), asked for a few at a time. */
export async function workerCredentials(
  master: { baseUrl: string },
  workerIds: readonly string[],
): Promise<Map<string, string>> {
  const issued = new Map<string, string>();
  for (let i = 0; i < workerIds.length; i += ISSUE_CONCURRENCY) {
    const batch = workerIds.slice(i, i + ISSUE_CONCURRENCY);
    const credentials = await Promise.all(batch.map((id) => workerCredential(master, id)));
    for (const [j, id] of batch.entries()) issued.set(id, credentials[j] as string);
  }
  return issued;
}

export interface WorkerOptions {
  id: string;
  /** Its WORKER_TOKEN, issued before the spawn (so registration times the worker, not the issuing). */
  credential: string;
  mqttUrl: string;
  grpcPort: number;
  slots: number;
  logLevel: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
}

export function spawnWorker(
  cleanup: Cleanup,
  opts: WorkerOptions,
): { proc: FlotaProcess; stop: () => Promise<void> } {
  const proc = spawnFlota({
    name: `flota worker ${opts.id}`,
    role: 'worker',
    nodeArgs: opts.nodeArgs,
    env: {
      WORKER_ID: opts.id,
      WORKER_TOKEN: opts.credential,
      MQTT_URL: opts.mqttUrl,
      MASTER_GRPC: `127.0.0.1:${opts.grpcPort}`,
      SLOTS: String(opts.slots),
      PROVIDER: 'echo',
      MODELS: 'echo',
      ECHO_DELAY_MS: '0',
      ECHO_CHUNK_SIZE: '256',
      LOG_LEVEL: opts.logLevel,
      ...opts.env,
    },
  });
  const stop = cleanup.add(`flota worker ${opts.id}`, () => proc.stop());
  return { proc, stop };
}

const workerListSchema = z.object({
  workers: z.array(z.object({ id: z.string(), state: z.string() })),
});

/** `GET /api/workers`: id → state. */
export async function workerStates(baseUrl: string): Promise<Map<string, string>> {
  const res = await fetch(`${baseUrl}/api/workers`, { signal: AbortSignal.timeout(5_000) });
  const { workers } = workerListSchema.parse(await res.json());
  return new Map(workers.map((w) => [w.id, w.state]));
}

/** Polls `GET /api/workers` until `count` of the listed ones pass `match` and are online. */
export async function waitForOnline(
  baseUrl: string,
  match: (id: string) => boolean,
  count: number,
  opts: { timeoutMs: number; intervalMs?: number; alive?: () => string | undefined },
): Promise<number> {
  const outcome = await waitFor(
    async () => {
      const dead = opts.alive?.();
      if (dead) return { dead, online: 0 };
      let online = 0;
      for (const [id, state] of await workerStates(baseUrl)) {
        if (state === 'online' && match(id)) online++;
      }
      return online >= count ? { dead: undefined, online } : undefined;
    },
    {
      timeoutMs: opts.timeoutMs,
      intervalMs: opts.intervalMs ?? 10,
      what: `${count} workers online`,
    },
  );
  if (outcome.dead) throw new Error(outcome.dead);
  return outcome.online;
}

/** The master's V8 heap in use, MB, from its Prometheus metrics (undefined if not exported). */
export async function masterHeapMb(baseUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const bytes = /^\S*nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
    return bytes === undefined ? undefined : Math.round((Number(bytes) / 1_048_576) * 100) / 100;
  } catch {
    return undefined;
  }
}
