/**
 * Child flota processes (`flota master`, `flota worker`) as `flota up` and the
 * local autoscaler run them: each in its own process group, so a terminal's
 * Ctrl-C reaches only the parent, which then stops them in order; each with
 * an IPC channel, so it shuts itself down if the parent dies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/flota.mjs', import.meta.url));
/** Longer than a worker's default SHUTDOWN_GRACE_MS (10 s), so in-flight work can finish. */
export const CHILD_STOP_GRACE_MS = 15_000;

export function spawnRole(role: 'master' | 'worker', env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [BIN, role], {
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
}

export const hasExited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null;

/** SIGTERM (a worker drains, a master commits), then SIGKILL after the grace. */
export async function stopChild(child: ChildProcess, graceMs = CHILD_STOP_GRACE_MS): Promise<void> {
  if (hasExited(child)) return;
  const done = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/** Resolves once the child has exited (at once if it already has). */
export function childExited(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return once(child, 'exit').then(() => undefined);
}
