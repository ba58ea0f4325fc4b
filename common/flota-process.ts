/**
 * Child flota processes (`flota master`, `flota worker`) as `flota up` and the
 * local autoscaler run them: each in its own process group, so a terminal's
 * Ctrl-C reaches only the parent, which then stops them in order; each with
 * an IPC channel, so it shuts itself down if the parent dies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * A child runs the same code as its parent: compiled from dist/ when this
 * module is compiled (npm start, the images; no transpiler loaded anywhere in
 * the tree), the TypeScript sources through bin/flota.mjs (tsx) in development.
 */
const ENTRY = fileURLToPath(
  new URL(
    import.meta.url.endsWith('.js') ? '../cli/flota.js' : '../bin/flota.mjs',
    import.meta.url,
  ),
);
/** Longer than a worker's default SHUTDOWN_GRACE_MS (10 s), so in-flight work can finish. */
export const CHILD_STOP_GRACE_MS = 15_000;

/**
 * Takes a child's stdout and stderr. Without one, a child writes straight to
 * its parent's; with one (`flota up` on a terminal) the parent reads them, to
 * show each log line its own way.
 */
export interface ChildOutput {
  attach(stdout: Readable, stderr: Readable): void;
}

export function spawnRole(
  role: 'master' | 'worker',
  env: NodeJS.ProcessEnv,
  output?: ChildOutput,
): ChildProcess {
  const child = spawn(process.execPath, [ENTRY, role], {
    env,
    stdio: ['ignore', output ? 'pipe' : 'inherit', output ? 'pipe' : 'inherit', 'ipc'],
    detached: true,
  });
  // A failed spawn still has both pipes; they just end at once.
  if (output && child.stdout && child.stderr) output.attach(child.stdout, child.stderr);
  return child;
}

export const hasExited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null;

/**
 * SIGTERM (a worker drains, a master commits), then SIGKILL after the grace.
 * Resolves once the child has exited — at once for one that never started —
 * and rejects if it cannot be signalled (it is then still running).
 */
export async function stopChild(child: ChildProcess, graceMs = CHILD_STOP_GRACE_MS): Promise<void> {
  if (hasExited(child)) return;
  const exited = childExited(child);
  // Never started: nothing to signal, and its spawn error is on its way.
  if (child.pid === undefined) return exited;
  let onError: (err: NodeJS.ErrnoException) => void = () => {};
  const refused = new Promise<never>((_, reject) => {
    onError = (err) => {
      if (err.syscall === 'kill' && !hasExited(child)) reject(err);
    };
  });
  child.on('error', onError);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    child.kill('SIGTERM');
    await Promise.race([exited, refused]);
  } finally {
    clearTimeout(timer);
    child.off('error', onError);
  }
}

/**
 * Resolves once the child has exited (at once if it already has), also when
 * it never started: a failed spawn emits 'error' and no 'exit'. Never
 * rejects. An 'error' from a running child (a failed kill or message) leaves
 * it running, so this keeps waiting for its exit.
 */
export function childExited(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      child.off('exit', done);
      child.off('error', onError);
      resolve();
    };
    const onError = () => {
      if (hasExited(child) || child.pid === undefined) done();
    };
    child.on('exit', done);
    child.on('error', onError);
  });
}
