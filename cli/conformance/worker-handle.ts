/**
 * The worker under test as the checks reach it, whoever started it: a child
 * process of the kit (worker-process.ts) or a worker its author started and
 * the kit attached to (attached-worker.ts).
 */
import { FlotaError } from '../../common/errors.ts';

/**
 * What a check does to the worker beyond the wire, which a worker the kit
 * attached to may not allow: send its process signals, kill it and start it
 * again, or start a second worker from its command.
 */
export type WorkerNeed = 'signals' | 'restart' | 'command';

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export interface WorkerHandle {
  /** False once it is gone (exited, or no longer heard by the kit's master). */
  readonly running: boolean;
  /** Settles once its process has exited. */
  readonly exited: Promise<WorkerExit>;
  /** The last lines it printed, for a failure message. */
  output(): string;
  /** Sends `signal` to its process; throws CheckSkipped when the kit has none to send it to. */
  signal(signal: NodeJS.Signals): void;
  /** Stops it if the kit started it; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** The worker under test did not come online (it exited, or took too long). */
export class WorkerNotOnlineError extends FlotaError {
  constructor(message: string) {
    super('worker_not_online', message);
  }
}
