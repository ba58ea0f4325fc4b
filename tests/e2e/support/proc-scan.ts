/** Looks through /proc for processes a test started, to prove none outlived a stop. */
import { readdir, readFile } from 'node:fs/promises';
import { waitFor } from '../../helpers/wait-for.ts';

export interface ProcessInfo {
  pid: number;
  /** argv joined by spaces. */
  cmdline: string;
}

async function readProc(pid: string, file: string): Promise<string> {
  const raw = await readFile(`/proc/${pid}/${file}`).catch(() => undefined);
  return raw ? raw.toString().replaceAll('\0', ' ').trim() : '';
}

/**
 * Live processes whose command line, or environment, contains `needle`.
 * Local workers inherit the master's environment, so a unique FLOTA_DATA_DIR
 * finds them even though their command line is the same for every test run.
 * Zombies (already exited, not yet reaped) do not count.
 */
export async function processesMentioning(needle: string): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const stat = await readProc(entry, 'stat');
    if (stat === '' || /^\d+ \(.*\) Z/.test(stat)) continue;
    const cmdline = await readProc(entry, 'cmdline');
    const environ = await readProc(entry, 'environ');
    if (cmdline.includes(needle) || environ.includes(needle)) {
      found.push({ pid: Number(entry), cmdline });
    }
  }
  return found;
}

/**
 * Waits (up to `timeoutMs`) for every process mentioning `needle` to be gone;
 * returns those still there then, so a test can show them: expect([]).
 */
export async function leftoverProcesses(
  needle: string,
  timeoutMs = 10_000,
): Promise<ProcessInfo[]> {
  let left: ProcessInfo[] = [];
  await waitFor(
    async () => {
      left = await processesMentioning(needle);
      return left.length === 0;
    },
    { timeoutMs, intervalMs: 50, what: `every process mentioning ${needle} to be gone` },
  ).catch(() => undefined);
  return left;
}

/** A live process's environment (empty when it is gone or not ours to read). */
export async function environOf(pid: number): Promise<Record<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`).catch(() => undefined);
  const env: Record<string, string> = {};
  for (const entry of raw?.toString().split('\0') ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
