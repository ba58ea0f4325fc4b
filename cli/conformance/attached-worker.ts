/**
 * A worker its author started and the kit attached to (`--attach`). The kit
 * sees it only on the wire: it is running while the kit's master would not
 * declare it dead (its last status record is no offline one, and it was heard
 * within 3 × heartbeatMs). With `--pid` the kit may signal that one local
 * process; without, a check that would signal it is skipped. Either way the
 * kit never stops it: it did not start it.
 */
import { readFileSync } from 'node:fs';
import { isWorkerDead } from '../../master/src/registry/liveness.ts';
import { CheckSkipped } from './check-errors.ts';
import type { Probe } from './probe.ts';
import type { WorkerExit, WorkerHandle } from './worker-handle.ts';

/** Why a check that signals the worker is skipped when the kit has no process to signal. */
export const NEEDS_PROCESS =
  "needs the worker's process: run it as a command (flota conformance -- <command>) or give --pid";

/** How often the kit looks whether the `--pid` process still exists: no event tells it. */
const PID_POLL_MS = 100;

/** Whether `pid` is a live process (a zombie, exited but not yet reaped by its parent, is not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Field 3 of /proc/{pid}/stat, after the parenthesised command name, is its state.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Why the kit cannot signal `pid` (no such process, or another user's); undefined when it can. */
export function cannotSignal(pid: number): string | undefined {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
      ? "the kit may not signal it (it is not its user's process)"
      : 'no such process';
  }
  return processAlive(pid) ? undefined : 'no such process';
}

export class AttachedWorker implements WorkerHandle {
  private exitWatch: Promise<WorkerExit> | undefined;

  constructor(
    private readonly probe: Probe,
    private readonly workerId: string,
    private readonly heartbeatMs: number,
    readonly pid: number | undefined,
  ) {}

  get running(): boolean {
    if (this.pid !== undefined) return processAlive(this.pid);
    return this.heard();
  }

  /** As the kit's master judges it: not said offline, and heard within 3 × heartbeatMs. */
  heard(now = Date.now()): boolean {
    const status = this.probe.statusesOf(this.workerId).at(-1);
    if (status?.value?.state === 'offline') return false;
    const heartbeat = this.probe.heartbeatsOf(this.workerId).at(-1);
    const lastSeen = Math.max(status?.at ?? 0, heartbeat?.at ?? 0);
    return !isWorkerDead(lastSeen, now, this.heartbeatMs);
  }

  /** Settles once the `--pid` process is gone; never without one (the kit cannot see it exit). */
  get exited(): Promise<WorkerExit> {
    this.exitWatch ??= new Promise((resolve) => {
      const { pid } = this;
      if (pid === undefined) return;
      const timer = setInterval(() => {
        if (processAlive(pid)) return;
        clearInterval(timer);
        resolve({ code: null, signal: null, at: Date.now() });
      }, PID_POLL_MS);
      // A check that gave up waiting must not hold the kit open.
      timer.unref();
    });
    return this.exitWatch;
  }

  output(): string {
    return '(the kit cannot see the output of a worker it did not start: look at its own log)';
  }

  signal(signal: NodeJS.Signals): void {
    if (this.pid === undefined) throw new CheckSkipped(NEEDS_PROCESS);
    if (!this.running) return;
    process.kill(this.pid, signal);
  }

  /** The kit did not start it, so it leaves it running. */
  async stop(): Promise<void> {}
}
