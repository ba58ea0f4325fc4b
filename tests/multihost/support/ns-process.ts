/**
 * Runs a command inside a network namespace (`ip netns exec`, which execs the
 * command in place, so the pid is the command's own) as the leader of its own
 * process group: one signal reaches the whole tree. Output is kept for the
 * failure report; no group outlives the test process.
 */
import { type LogLine, logLineSchema } from '../../../proto/src/schemas/log.ts';
import { type FlotaProcess, spawnGroup } from '../../e2e/support/flota-process.ts';

/** Everything the rehearsal starts is idle by the end: a longer stop means something hangs. */
const GRACEFUL_STOP_MS = 5_000;

export interface NsSpawnOptions {
  name: string;
  netns: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

export function spawnInNetns(opts: NsSpawnOptions): FlotaProcess {
  return spawnGroup({
    name: opts.name,
    command: 'ip',
    args: ['netns', 'exec', opts.netns, opts.command, ...opts.args],
    env: opts.env,
    cwd: opts.cwd,
    graceMs: GRACEFUL_STOP_MS,
  });
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
