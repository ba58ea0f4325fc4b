/**
 * Runs a command inside a network namespace (`ip netns exec`, which execs the
 * command in place, so the pid is the command's own) as the leader of its own
 * process group: one signal reaches the whole tree. Output is kept for the
 * failure report; no group outlives the test process.
 */
import { spawn } from 'node:child_process';
import { type LogLine, logLineSchema } from '../../../proto/src/schemas/log.ts';
import type { Exit, FlotaProcess } from '../../e2e/support/flota-process.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const OUTPUT_LIMIT = 400_000;
/** Everything the rehearsal starts is idle by the end: a longer stop means something hangs. */
const GRACEFUL_STOP_MS = 5_000;

// Test-process-wide on purpose: one 'exit' hook SIGKILLs every group still alive.
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

const groupAlive = (pid: number) => signalGroup(pid, 0);

export interface NsSpawnOptions {
  name: string;
  netns: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

export function spawnInNetns(opts: NsSpawnOptions): FlotaProcess {
  const child = spawn('ip', ['netns', 'exec', opts.netns, opts.command, ...opts.args], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${opts.name}`);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const group of liveGroups) signalGroup(group, 'SIGKILL');
    });
  }
  liveGroups.add(pid);
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
    signalGroup: (signal) => void signalGroup(pid, signal),
    stop(signal = 'SIGTERM') {
      stopping ??= (async () => {
        if (!hasExited()) signalGroup(pid, signal);
        await waitFor(() => !groupAlive(pid), {
          timeoutMs: GRACEFUL_STOP_MS,
          intervalMs: 50,
          what: `${opts.name} (process group ${pid}) to stop`,
        }).catch(() => signalGroup(pid, 'SIGKILL'));
        const exit = await exited;
        await waitFor(() => !groupAlive(pid), { timeoutMs: 5_000, what: `group ${pid} gone` });
        liveGroups.delete(pid);
        return exit;
      })();
      return stopping;
    },
  };
}

/** The JSON log lines a flota process wrote to stdout so far (other lines skipped). */
export function logLines(p: FlotaProcess): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of p.stdout().split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      const parsed = logLineSchema.safeParse(JSON.parse(text));
      if (parsed.success) lines.push(parsed.data);
    } catch {
      // a line cut by the output limit
    }
  }
  return lines;
}
