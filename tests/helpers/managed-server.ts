/**
 * Shared plumbing for the server helpers (redis-server, mosquitto): spawn a
 * binary on a free 127.0.0.1 port, wait until it answers, and make sure it
 * never outlives the test process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from './free-port.ts';
import { waitFor } from './wait-for.ts';

export interface ManagedServer {
  /** e.g. `redis://127.0.0.1:40123`; stays valid across restart(). */
  readonly url: string;
  readonly port: number;
  /** The running server's process id (a new one after restart()). */
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM, SIGKILL after 10 s); resolves once it exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, right now, without waiting: simulates a crash. */
  kill(): void;
  /** Stops it if running, then starts it again on the same port. */
  restart(): Promise<void>;
}

export interface ServerSpec {
  /** Name used in error messages, e.g. "redis-server". */
  what: string;
  command: string;
  /** Arguments for a start on `port` (may write config files first). */
  prepare(port: number): Promise<string[]>;
  /** True once the server answers on `port`; may throw while it does not. */
  ready(port: number): Promise<boolean>;
  url(port: number): string;
  /** Removes whatever prepare() wrote; called once, after the final stop. */
  dispose?(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const OUTPUT_LIMIT = 4_000;

// Test-process-wide on purpose: one 'exit' hook kills every child still running,
// so a crashed or forgotten test never leaves servers behind.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  running.add(child);
  child.once('exit', () => running.delete(child));
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

async function launch(spec: ServerSpec, port: number): Promise<ChildProcess> {
  const args = await spec.prepare(port);
  const child = spawn(spec.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  let spawnError: Error | undefined;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  child.once('error', (err) => {
    spawnError = err;
  });
  const state = await waitFor(
    async () => {
      if (spawnError || hasExited(child)) return 'exited';
      return (await spec.ready(port)) ? 'ready' : undefined;
    },
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: 20, what: `${spec.what} on port ${port}` },
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  if (state === 'exited') {
    const why = spawnError?.message ?? `exit code ${child.exitCode}, signal ${child.signalCode}`;
    throw new Error(`${spec.what} on port ${port} stopped before it was ready (${why}): ${output}`);
  }
  return child;
}

function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || hasExited(child) || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts the server on a free port; if it dies before answering (a port race
 * with another process), tries again on another port, up to three times.
 */
export async function startManagedServer(spec: ServerSpec): Promise<ManagedServer> {
  let port = 0;
  let child: ChildProcess | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    port = await freePort();
    try {
      child = await launch(spec, port);
    } catch (err) {
      lastError = err;
    }
  }
  if (!child) throw lastError;
  let disposed = false;
  return {
    url: spec.url(port),
    port,
    get pid() {
      return child?.pid;
    },
    async stop() {
      await stopChild(child);
      if (!disposed) {
        disposed = true;
        await spec.dispose?.();
      }
    },
    kill() {
      child?.kill('SIGKILL');
    },
    async restart() {
      await stopChild(child);
      child = await launch(spec, port);
    },
  };
}
