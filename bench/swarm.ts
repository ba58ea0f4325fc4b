/**
 * Runs swarm-sim.ts as child processes (their MQTT clients get their own
 * event loops, so they do not disturb the latency measured by the load
 * generator) and relays their progress. One process carries at most
 * SIMS_PER_PROCESS sims: ten thousand clients heartbeating in one event loop
 * fall behind their own period, and the master would be blamed for it. The
 * sims' credentials reach them over the IPC channel, never on a command line,
 * where any local user could read them.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Cleanup } from './cleanup.ts';
import { baseChildEnv } from './config.ts';
import { REPO_ROOT } from './processes.ts';

const SIM_ENTRY = fileURLToPath(new URL('./swarm-sim.ts', import.meta.url));

const statsFields = {
  connected: z.number(),
  heartbeats: z.number(),
  reconnects: z.number(),
  errors: z.number(),
};
export const swarmMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('stats'), ...statsFields }),
  z.object({ type: z.literal('stopped'), ...statsFields }),
]);
export type SwarmMessage = z.infer<typeof swarmMessageSchema>;
export type SwarmStats = Omit<SwarmMessage, 'type'>;

/** What the benchmark tells swarm-sim.ts: whom to simulate (it waits for this), and when to stop. */
export const swarmCommandSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('start'),
    sims: z.array(z.object({ id: z.string().min(1), credential: z.string().min(1) })),
  }),
  z.object({ type: z.literal('stop') }),
]);
export type SwarmCommand = z.infer<typeof swarmCommandSchema>;

/** The simulated workers' ids: `sim-00000`, `sim-00001`, … */
export const simIds = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `sim-${String(i).padStart(5, '0')}`);

export interface SwarmOptions {
  mqttUrl: string;
  /** Each simulated worker's id → its own credential (MQTT password), connected in this order. */
  credentials: ReadonlyMap<string, string>;
  connectPerSec: number;
  heartbeatMs: number;
  model: string;
}

/** Most simulated workers one swarm-sim.ts process runs. */
export const SIMS_PER_PROCESS = 2_500;

export interface Swarm {
  /** Every swarm-sim.ts process (for the CPU meter). */
  readonly pids: number[];
  stats(): SwarmStats;
  /** Publishes every sim's offline record, disconnects, and waits for the process to exit. */
  stop(): Promise<SwarmStats>;
}

/** Splits the sims over ⌈n / SIMS_PER_PROCESS⌉ processes, each connecting its share of the rate. */
export function startSwarm(cleanup: Cleanup, opts: SwarmOptions): Swarm {
  const roster = [...opts.credentials];
  const processes = Math.max(1, Math.ceil(roster.length / SIMS_PER_PROCESS));
  const parts = Array.from({ length: processes }, (_, i) =>
    startSimProcess(cleanup, {
      ...opts,
      // Interleaved, so every process connects its share from the first second on.
      credentials: new Map(roster.filter((_, j) => j % processes === i)),
      connectPerSec: Math.max(1, opts.connectPerSec / processes),
    }),
  );
  const sum = (stats: SwarmStats[]): SwarmStats => ({
    connected: stats.reduce((n, s) => n + s.connected, 0),
    heartbeats: stats.reduce((n, s) => n + s.heartbeats, 0),
    reconnects: stats.reduce((n, s) => n + s.reconnects, 0),
    errors: stats.reduce((n, s) => n + s.errors, 0),
  });
  return {
    pids: parts.map((p) => p.pid),
    stats: () => sum(parts.map((p) => p.stats())),
    stop: async () => sum(await Promise.all(parts.map((p) => p.stop()))),
  };
}

function startSimProcess(
  cleanup: Cleanup,
  opts: SwarmOptions,
): { pid: number; stats(): SwarmStats; stop(): Promise<SwarmStats> } {
  const child = fork(
    SIM_ENTRY,
    [
      '--url',
      opts.mqttUrl,
      '--rate',
      String(opts.connectPerSec),
      '--heartbeat-ms',
      String(opts.heartbeatMs),
      '--model',
      opts.model,
    ],
    {
      cwd: REPO_ROOT,
      env: baseChildEnv(),
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const start: SwarmCommand = {
    type: 'start',
    sims: [...opts.credentials].map(([id, credential]) => ({ id, credential })),
  };
  child.send(start);
  let latest: SwarmStats = { connected: 0, heartbeats: 0, reconnects: 0, errors: 0 };
  child.on('message', (raw) => {
    const message = swarmMessageSchema.safeParse(raw);
    if (message.success) {
      const { type: _type, ...stats } = message.data;
      latest = stats;
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<SwarmStats> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      const stopCommand: SwarmCommand = { type: 'stop' };
      if (child.connected) child.send(stopCommand);
      else child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      return latest;
    })();
    return stopping;
  };
  const undo = cleanup.add('simulated workers', stop);
  return {
    pid: child.pid ?? 0,
    stats: () => latest,
    stop: async () => {
      await undo();
      return latest;
    },
  };
}
