/**
 * A `redis-server` that keeps every acknowledged write across a stop: append
 * only file with `appendfsync always`, in a directory of its own. `outage(ms)`
 * stops it cleanly (SIGTERM, so it flushes and exits) and starts it again on
 * the same port and directory after `ms`: the store a master sees come back is
 * the one it lost.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ManagedServer, startManagedServer } from './managed-server.ts';
import { answersPing } from './redis-server.ts';

export interface OutageTimes {
  /** When the server had exited (SIGTERM honoured). */
  stoppedAt: number;
  /** When it answered PING again. */
  backAt: number;
}

export interface DurableRedis extends ManagedServer {
  /** The data directory (appendonly files); removed by stop(). */
  readonly dir: string;
  /** Stops it, keeps it down for `downMs`, starts it again on the same port and data. */
  outage(downMs: number): Promise<OutageTimes>;
}

/**
 * Spawns `redis-server --appendonly yes --appendfsync always --dir <temp>` on
 * a free 127.0.0.1 port and resolves once it answers PING.
 *
 * @example
 * const redis = await startDurableRedis();
 * const { stoppedAt, backAt } = await redis.outage(5_000);
 */
export async function startDurableRedis(): Promise<DurableRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'flota-redis-aof-'));
  // prepare() runs before every launch; during an outage it holds the launch back.
  let holdMs = 0;
  let stoppedAt = 0;
  let server: ManagedServer;
  try {
    server = await startManagedServer({
      what: 'redis-server (appendonly)',
      command: 'redis-server',
      prepare: async (port) => {
        if (holdMs > 0) {
          stoppedAt = Date.now();
          await new Promise((resolve) => setTimeout(resolve, holdMs));
        }
        return [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--protected-mode',
          'yes',
        ];
      },
      ready: answersPing,
      url: (port) => `redis://127.0.0.1:${port}`,
      dispose: () => rm(dir, { recursive: true, force: true }),
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: server.url,
    port: server.port,
    get pid() {
      return server.pid;
    },
    dir,
    stop: () => server.stop(),
    kill: () => server.kill(),
    restart: () => server.restart(),
    async outage(downMs) {
      holdMs = downMs;
      try {
        await server.restart();
      } finally {
        holdMs = 0;
      }
      return { stoppedAt, backAt: Date.now() };
    },
  };
}
