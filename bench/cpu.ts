/**
 * CPU time per component over a phase, from /proc/<pid>/stat (user + system):
 * where the machine's cores go per task — master, echo workers, Redis, the
 * broker, this load generator, the simulated workers.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

let ticksPerSec: number | undefined;
function clockTicks(): number {
  if (ticksPerSec === undefined) {
    try {
      ticksPerSec = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSec = 100;
    }
  }
  return ticksPerSec;
}

interface Stat {
  comm: string;
  ppid: number;
  /** utime + stime, seconds. */
  cpuSec: number;
}

async function readStat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    // Fields after "(comm)": state ppid … utime is field 14, stime 15 (1-based, whole line).
    const rest = text.slice(close + 2).split(' ');
    const ppid = Number(rest[1]);
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { comm, ppid, cpuSec: ticks / clockTicks() };
  } catch {
    return undefined;
  }
}

/** Pids of this process's direct children whose command name is `comm`. */
export async function childPids(comm: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(Number(entry));
    if (stat?.ppid === process.pid && stat.comm === comm) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Component name → its pids. The result adds `client` (this process) and
 * `other` (the rest of the machine's busy time over the same period).
 */
export type CpuGroups = Record<string, number[]>;

async function snapshot(groups: CpuGroups): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, pids] of Object.entries(groups)) {
    let sec = 0;
    for (const pid of pids) sec += (await readStat(pid))?.cpuSec ?? 0;
    out[name] = sec;
  }
  const self = process.cpuUsage();
  out.client = (self.user + self.system) / 1e6;
  out.machine = await machineBusySec();
  return out;
}

/** Busy CPU seconds of the whole machine, all cores (everything but idle and iowait). */
async function machineBusySec(): Promise<number> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return (total - idle) / clockTicks();
  } catch {
    return 0;
  }
}

/** Starts measuring; the returned function gives CPU seconds per component since then. */
export async function startCpuMeter(
  groups: CpuGroups,
): Promise<() => Promise<Record<string, number>>> {
  const before = await snapshot(groups);
  return async () => {
    const after = await snapshot(groups);
    const used: Record<string, number> = {};
    for (const [name, sec] of Object.entries(after)) used[name] = sec - (before[name] ?? 0);
    // Whatever else ran on the machine meanwhile (other users, the kernel): the noise.
    const ours = Object.entries(used)
      .filter(([name]) => name !== 'machine')
      .reduce((sum, [, sec]) => sum + sec, 0);
    used.other = Math.max(0, (used.machine ?? 0) - ours);
    delete used.machine;
    return used;
  };
}

/** CPU milliseconds per task for each component, rounded to 0.01. */
export function perTaskMs(used: Record<string, number>, tasks: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, sec] of Object.entries(used)) {
    out[name] = Math.round(((sec * 1000) / Math.max(1, tasks)) * 100) / 100;
  }
  return out;
}
