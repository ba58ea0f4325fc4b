/**
 * Spawns `node bin/flota.mjs <role>` the way a terminal would: in its own
 * process group, so one signal reaches the whole tree (master, local workers,
 * embedded PostgreSQL). Output goes to a buffer printed only when a test fails
 * (or always with FLOTA_TEST_LOGS=1), and no group outlives the test process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../helpers/wait-for.ts';
import { baseChildEnv } from './config.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FLOTA_BIN = fileURLToPath(new URL('../../../bin/flota.mjs', import.meta.url));

const OUTPUT_LIMIT = 400_000;
const GRACEFUL_STOP_MS = 20_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FlotaProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves once the process itself (not its group) exited. */
  readonly exited: Promise<Exit>;
  /** Everything it (and children sharing its stdio) wrote so far. */
  stdout(): string;
  stderr(): string;
  hasExited(): boolean;
  /** Sends `signal` to the whole process group, as a terminal does on Ctrl-C. */
  signalGroup(signal: NodeJS.Signals): void;
  /** SIGTERM/SIGINT to the group, SIGKILL to the group if it is not gone in time. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

// Test-process-wide on purpose: one 'exit' hook SIGKILLs every group still alive,
// so even a crashed test run leaves no master, worker or PostgreSQL behind.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const group of liveGroups) killGroup(group, 'SIGKILL');
    });
  }
  liveGroups.add(pid);
}

function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while any process is left in the group `pid` leads (even after the leader exited). */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface SpawnFlotaOptions {
  name: string;
  args: string[];
  env: Record<string, string>;
}

export interface SpawnGroupOptions {
  name: string;
  command: string;
  args: string[];
  /** The whole environment (nothing is inherited). */
  env: Record<string, string>;
  cwd?: string;
  /** How long stop() waits after its signal before SIGKILL. Default 20 s. */
  graceMs?: number;
}

export function spawnFlota(opts: SpawnFlotaOptions): FlotaProcess {
  return spawnGroup({
    name: opts.name,
    command: process.execPath,
    args: [FLOTA_BIN, ...opts.args],
    env: { ...baseChildEnv(), ...opts.env },
    cwd: REPO_ROOT,
  });
}

/** Any command as the leader of its own process group, tracked until it is gone. */
export function spawnGroup(opts: SpawnGroupOptions): FlotaProcess {
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${opts.name}`);
  trackGroup(pid);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-OUTPUT_LIMIT);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-OUTPUT_LIMIT);
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  let stopping: Promise<Exit> | undefined;

  return {
    name: opts.name,
    pid,
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    hasExited,
    signalGroup: (signal) => void killGroup(pid, signal),
    stop(signal = 'SIGTERM') {
      stopping ??= (async () => {
        if (!hasExited()) killGroup(pid, signal);
        await waitFor(() => !groupAlive(pid), {
          timeoutMs: opts.graceMs ?? GRACEFUL_STOP_MS,
          intervalMs: 50,
          what: `${opts.name} (process group ${pid}) to stop`,
        }).catch(() => killGroup(pid, 'SIGKILL'));
        const exit = await exited;
        await waitFor(() => !groupAlive(pid), { timeoutMs: 5_000, what: `group ${pid} gone` });
        liveGroups.delete(pid);
        return exit;
      })();
      return stopping;
    },
  };
}

/** The captured output of every process, for a failed test's report. */
export function dumpOutput(processes: Iterable<FlotaProcess | undefined>): void {
  for (const p of processes) {
    if (!p) continue;
    console.error(`\n===== ${p.name} (pid ${p.pid}) stderr =====\n${p.stderr()}`);
    console.error(`===== ${p.name} (pid ${p.pid}) stdout =====\n${p.stdout()}`);
  }
}
