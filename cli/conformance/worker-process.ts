/**
 * The worker under test as a child process: started with the environment the
 * kit documents, stopped with the signal a check asks for, and always killed
 * (with its whole process group) when the run ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { WorkerExit, WorkerHandle } from './worker-handle.ts';

/** Lines of the worker's output kept for a failure message. */
const TAIL_LINES = 20;

export class WorkerProcess implements WorkerHandle {
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  /** Settles once the process has exited. */
  readonly exited: Promise<WorkerExit>;
  exit: WorkerExit | undefined;

  constructor(command: string[], env: NodeJS.ProcessEnv, log: Logger) {
    const [file, ...args] = command;
    if (!file) throw new Error('no worker command');
    // Its own process group: a command that starts children of its own is stopped whole.
    this.child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.tail.push(line.slice(0, 500));
        if (this.tail.length > TAIL_LINES) this.tail.shift();
      }
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.tail.push(`cannot start ${file}: ${err.message}`);
        this.exit = { code: null, signal: null, at: Date.now() };
        resolve(this.exit);
      });
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        log.debug({ pid: this.child.pid, code, signal }, 'worker under test exited');
        resolve(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last lines it printed, for a failure message. */
  output(): string {
    return this.tail.join('\n');
  }

  /** Sends `signal` to the worker's process group (the worker alone if that fails). */
  signal(signal: NodeJS.Signals): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      this.child.kill(signal);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  async stop(graceMs = 2_000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
