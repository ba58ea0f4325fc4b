/**
 * Runs swarm-sim.ts as a child process (its 1,000 MQTT clients get their own
 * event loop, so they do not disturb the latency measured by the load
 * generator) and relays its progress.
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

export interface SwarmOptions {
  mqttUrl: string;
  count: number;
  connectPerSec: number;
  heartbeatMs: number;
  model: string;
}

export interface Swarm {
  readonly pid: number;
  stats(): SwarmStats;
  /** Publishes every sim's offline record, disconnects, and waits for the process to exit. */
  stop(): Promise<SwarmStats>;
}

export function startSwarm(cleanup: Cleanup, opts: SwarmOptions): Swarm {
  const child = fork(
    SIM_ENTRY,
    [
      '--url',
      opts.mqttUrl,
      '--count',
      String(opts.count),
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
      if (child.connected) child.send({ type: 'stop' });
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
