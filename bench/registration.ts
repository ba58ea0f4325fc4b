/**
 * Worker registration: how long from spawning a `flota worker` process until
 * the master lists it online in `GET /api/workers`, and (read from the
 * worker's own log) from its MQTT connect until then.
 */
import { z } from 'zod';
import { waitFor } from '../tests/helpers/wait-for.ts';
import type { Cleanup } from './cleanup.ts';
import { deadReason } from './processes.ts';
import { spawnWorker, waitForOnline, workerCredential } from './system.ts';

const logLineSchema = z
  .object({ ts: z.number().optional(), time: z.number().optional(), msg: z.string() })
  .loose();

export interface RegistrationSample {
  /** Spawn → listed online. */
  fromSpawnMs: number;
  /** The worker's "connected to broker" log line → listed online. */
  fromConnectMs?: number;
}

/** Epoch ms of the worker's first "connected to broker" log line, if it logged one. */
function connectedAt(stdout: string): number | undefined {
  for (const raw of stdout.split('\n')) {
    if (!raw.includes('connected to broker')) continue;
    try {
      const line = logLineSchema.safeParse(JSON.parse(raw));
      if (line.success && line.data.msg === 'connected to broker') {
        return line.data.ts ?? line.data.time;
      }
    } catch {}
  }
  return undefined;
}

export interface ProbeOptions {
  id: string;
  baseUrl: string;
  mqttUrl: string;
  grpcPort: number;
  slots: number;
}

/**
 * Spawns one worker (alone, with info logs so its connect time is known),
 * times its registration, and stops it again. Its credential is issued
 * first, as an operator does with `flota token worker`, and is not timed.
 */
export async function probeRegistration(
  cleanup: Cleanup,
  opts: ProbeOptions,
): Promise<RegistrationSample> {
  const credential = await workerCredential(opts, opts.id);
  const { proc, stop } = spawnWorker(cleanup, { ...opts, credential, logLevel: 'info' });
  try {
    await waitForOnline(opts.baseUrl, (id) => id === opts.id, 1, {
      timeoutMs: 60_000,
      intervalMs: 5,
      alive: () => deadReason(proc),
    });
    const listedAt = performance.now();
    const listedEpoch = Date.now();
    // The line was written before the online record; give the pipe a moment to deliver it.
    const connected = await waitFor(() => connectedAt(proc.stdout()), {
      timeoutMs: 2_000,
      intervalMs: 10,
    }).catch(() => undefined);
    return {
      fromSpawnMs: listedAt - proc.spawnedAt,
      fromConnectMs: connected === undefined ? undefined : listedEpoch - connected,
    };
  } finally {
    await stop();
  }
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
