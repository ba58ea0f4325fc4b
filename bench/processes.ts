/**
 * Child processes of the benchmark: `node dist/cli/flota.js <role>` (the
 * compiled build, as `npm start` runs it; `bin/flota.mjs` through tsx with
 * --from-source) in its own process group (one signal reaches the whole tree), output kept in a bounded
 * buffer, and a process-wide record so nothing outlives the benchmark, even
 * when it fails or is interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../tests/helpers/wait-for.ts';
import { baseChildEnv } from './config.ts';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const SOURCE_ENTRY = fileURLToPath(new URL('../bin/flota.mjs', import.meta.url));
const COMPILED_ENTRY = fileURLToPath(new URL('../dist/cli/flota.js', import.meta.url));
let entry = SOURCE_ENTRY;

/**
 * Runs flota from the compiled build from now on: builds it first
 * (incremental: about half a second when nothing changed).
 */
export async function useCompiledBuild(): Promise<void> {
  await run('npm', ['run', 'build', '--silent']);
  entry = COMPILED_ENTRY;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed: ${err}`)),
    );
  });
}

const OUTPUT_LIMIT = 200_000;
const GRACEFUL_STOP_MS = 15_000;
/** After Ctrl-C the broker and Redis may already be gone; nobody waits long then. */
const HURRIED_STOP_MS = 3_000;
let stopGraceMs = GRACEFUL_STOP_MS;

/** Shortens the grace every later stop() gives a process before SIGKILL. */
export function hurryStops(): void {
  stopGraceMs = HURRIED_STOP_MS;
}

export interface FlotaProcess {
  readonly name: string;
  readonly pid: number;
  /** performance.now() right before the spawn. */
  readonly spawnedAt: number;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  hasExited(): boolean;
  /** SIGTERM to the group, SIGKILL if it is not gone in time. Idempotent. */
  stop(): Promise<void>;
}

const liveGroups = new Set<number>();

function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs every group still alive; synchronous, so it may run in an 'exit' hook. */
export function killAllGroups(): void {
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
  liveGroups.clear();
}

export interface SpawnOptions {
  name: string;
  /** `master` or `worker`. */
  role: string;
  env: Record<string, string>;
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
}

export function spawnFlota(opts: SpawnOptions): FlotaProcess {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), entry, opts.role], {
    cwd: REPO_ROOT,
    env: { ...baseChildEnv(), ...opts.env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${opts.name}`);
  liveGroups.add(pid);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-OUTPUT_LIMIT);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-OUTPUT_LIMIT);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  const groupAlive = () => signalGroup(pid, 0);
  let stopping: Promise<void> | undefined;
  return {
    name: opts.name,
    pid,
    spawnedAt,
    child,
    stdout: () => out,
    stderr: () => err,
    hasExited,
    stop() {
      stopping ??= (async () => {
        if (groupAlive()) signalGroup(pid, 'SIGTERM');
        await waitFor(() => !groupAlive(), {
          timeoutMs: stopGraceMs,
          intervalMs: 25,
          what: `${opts.name} to stop`,
        }).catch(() => signalGroup(pid, 'SIGKILL'));
        await exited;
        liveGroups.delete(pid);
      })();
      return stopping;
    },
  };
}

/** Why waiting on `p` is pointless, when it already exited. */
export function deadReason(p: FlotaProcess): string | undefined {
  if (!p.hasExited()) return undefined;
  const { exitCode, signalCode } = p.child;
  const tail = (s: string) => s.slice(-2_000);
  return `${p.name} exited early (code ${exitCode}, signal ${signalCode}):\n${tail(p.stderr())}\n${tail(p.stdout())}`;
}

/** Resident set size of a process in MB, from /proc (undefined once it is gone). */
export async function rssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}
