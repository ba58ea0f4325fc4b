/**
 * Runs assignments on the provider, at most `slots` at once. Assignments it
 * cannot take (full, unknown model, past deadline, draining) are answered with
 * an error result instead of being dropped, so the master can requeue at once.
 * A duplicate delivery of the same (taskId, attempt) runs once.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../common/logger.ts';
import type { TaskAck__Output, TaskResult } from '../../proto/src/grpc.ts';
import {
  type AssignmentRejectCode,
  type AttemptStopCode,
  PROVIDER_ERROR_CODE,
} from '../../proto/src/schemas/codes.ts';
import type { Assignment } from '../../proto/src/schemas/task.ts';
import type { AttemptRef, ResultReporter } from './grpc-link.ts';
import { ABORTED_CODE, type Provider, type Usage } from './providers/index.ts';
import { scrubSecrets } from './providers/scrub.ts';
import { estimateUsage } from './token-count.ts';

const SEEN_LIMIT = 10_000;

interface Running {
  assignment: Assignment;
  controller: AbortController;
  stopReason?: AttemptStopCode;
}

export interface TaskRunnerOptions {
  workerId: string;
  slots: number;
  models: readonly string[];
  provider: Provider;
  reporter: ResultReporter;
  log: Logger;
}

const key = (taskId: string, attempt: number) => `${taskId}#${attempt}`;

export class TaskRunner {
  private readonly running = new Map<string, Running>();
  /**
   * Finished attempts whose result the master has not acknowledged yet. They
   * hold no slot but stay in the heartbeat's `active` list: otherwise the
   * master, seeing the attempt neither running nor reported, would take the
   * assignment back as unconfirmed while the result is still on its way
   * (e.g. while the gRPC link reconnects).
   */
  private readonly reporting = new Map<string, Assignment>();
  /** `taskId#attempt` delivered lately, so a duplicate delivery runs once. */
  private readonly seen = new LRUCache<string, true>({ max: SEEN_LIMIT });
  private readonly reports = new Set<Promise<unknown>>();
  private models: ReadonlySet<string>;
  private slots: number;
  private readonly log: Logger;
  private draining = false;
  private closed = false;

  constructor(private readonly options: TaskRunnerOptions) {
    this.models = new Set(options.models);
    this.slots = options.slots;
    this.log = options.log.child({ component: 'task-runner' });
  }

  get isDraining(): boolean {
    return this.draining || this.closed;
  }

  setDraining(draining: boolean): void {
    this.draining = draining;
    this.log.info({ draining }, draining ? 'draining: no new work' : 'resumed: taking work');
  }

  /**
   * Live config: new assignments see the new slots and models at once;
   * attempts already running go on (even past fewer slots, or on a model
   * no longer listed).
   */
  reconfigure(change: { slots?: number; models?: readonly string[] }): void {
    if (change.slots !== undefined) this.slots = change.slots;
    if (change.models !== undefined) this.models = new Set(change.models);
    this.log.info({ slots: this.slots, models: [...this.models] }, 'reconfigured');
  }

  /** No more intake, ever (shutdown). */
  stopIntake(): void {
    this.closed = true;
  }

  freeSlots(): number {
    return Math.max(0, this.slots - this.running.size);
  }

  active(): Array<{ taskId: string; attempt: number; lease: string }> {
    const attempts = [
      ...[...this.running.values()].map((r) => r.assignment),
      ...this.reporting.values(),
    ];
    return attempts.map((a) => ({ taskId: a.taskId, attempt: a.attempt, lease: a.lease }));
  }

  accept(assignment: Assignment): void {
    const id = key(assignment.taskId, assignment.attempt);
    const ref = { taskId: assignment.taskId, attempt: assignment.attempt };
    if (this.seen.has(id)) {
      this.log.debug(ref, 'duplicate assignment ignored');
      return;
    }
    this.remember(id);
    const reject = this.rejection(assignment);
    if (reject) {
      this.log.warn({ ...ref, code: reject.code }, 'assignment refused');
      this.track(this.refuse(assignment, reject.code, reject.message));
      return;
    }
    const entry: Running = { assignment, controller: new AbortController() };
    this.running.set(id, entry);
    this.log.info({ ...ref, model: assignment.model }, 'task started');
    this.track(this.run(entry));
  }

  /** Aborts a running task; the result reports `cancelled`. */
  cancel(taskId: string, attempt?: number): boolean {
    let found = false;
    for (const entry of this.running.values()) {
      const a = entry.assignment;
      if (a.taskId === taskId && (attempt === undefined || a.attempt === attempt)) {
        this.stop(entry, 'cancelled');
        found = true;
      }
    }
    this.log.info({ taskId, attempt, found }, 'cancel requested');
    return found;
  }

  abortAll(): void {
    for (const entry of this.running.values()) this.stop(entry, 'shutdown');
  }

  /** Resolves when every task has finished and every result has been reported. */
  async idle(): Promise<void> {
    while (this.reports.size > 0) await Promise.allSettled([...this.reports]);
  }

  private stop(entry: Running, reason: AttemptStopCode): void {
    entry.stopReason ??= reason;
    entry.controller.abort();
  }

  private remember(id: string): void {
    this.seen.set(id, true);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((error: unknown) => {
      this.log.error({ err: error instanceof Error ? error.message : error }, 'task runner error');
    });
    this.reports.add(tracked);
    void tracked.finally(() => this.reports.delete(tracked));
  }

  private rejection(a: Assignment): { code: AssignmentRejectCode; message: string } | undefined {
    if (this.isDraining) return { code: 'draining', message: 'worker is draining' };
    if (!this.models.has(a.model)) {
      return {
        code: 'model_unsupported',
        message: `model ${a.model} is not served by this worker (serves: ${[...this.models].join(', ')})`,
      };
    }
    if (a.deadline <= Date.now()) {
      return { code: 'deadline_exceeded', message: 'assignment arrived after its deadline' };
    }
    if (this.running.size >= this.slots) {
      return { code: 'worker_full', message: `all ${this.slots} slots are busy` };
    }
    return undefined;
  }

  private baseResult(a: Assignment, startedAt: number): TaskResult {
    const finishedAt = Date.now();
    return {
      taskId: a.taskId,
      attempt: a.attempt,
      lease: a.lease,
      workerId: this.options.workerId,
      model: a.model,
      startedAt,
      finishedAt,
      processingMs: Math.max(0, finishedAt - startedAt),
    };
  }

  private async refuse(a: Assignment, code: AssignmentRejectCode, message: string): Promise<void> {
    const result = {
      ...this.baseResult(a, Date.now()),
      error: message,
      errorCode: code,
    };
    const ack = await this.options.reporter.report(result, a.deadline);
    this.logAck(a, ack);
  }

  private async run(entry: Running): Promise<void> {
    const { assignment: a, controller } = entry;
    const { provider, reporter } = this.options;
    const startedAt = Date.now();
    const ref: AttemptRef = {
      taskId: a.taskId,
      attempt: a.attempt,
      lease: a.lease,
      deadline: a.deadline,
    };
    const stream = reporter.openStream(ref);
    const timer = setTimeout(
      () => this.stop(entry, 'deadline_exceeded'),
      Math.max(0, a.deadline - startedAt),
    );
    let outcome: { text: string; usage?: Usage } | { error: string; errorCode: string };
    // The master sends a text to continue only to a worker that said it can.
    const continueFrom = provider.continues ? a.continueFrom : undefined;
    try {
      const generated = await provider.generate(
        {
          model: a.model,
          prompt: a.prompt,
          messages: a.messages,
          params: a.params,
          apiKey: a.apiKey,
          signal: controller.signal,
          startedAt,
          ...(continueFrom !== undefined && { continueFrom }),
        },
        (text) => stream.write(text),
      );
      // Counted here when the provider gave no counts (marked as estimated).
      const usage = generated.usage ?? (await this.countUsage(a, generated.text));
      // The result is the whole answer: the continued text, then what this attempt added.
      outcome = { text: continueFrom ? continueFrom + generated.text : generated.text, usage };
    } catch (error) {
      outcome = this.describeFailure(entry, error);
    } finally {
      clearTimeout(timer);
      this.running.delete(key(a.taskId, a.attempt));
      this.reporting.set(key(a.taskId, a.attempt), a);
    }
    const result: TaskResult = { ...this.baseResult(a, startedAt), ...outcome };
    const level = 'error' in outcome ? 'warn' : 'info';
    this.log[level](
      {
        taskId: a.taskId,
        attempt: a.attempt,
        processingMs: result.processingMs,
        chunks: stream.chunks,
        ...('errorCode' in outcome && { errorCode: outcome.errorCode }),
      },
      'error' in outcome ? 'task failed' : 'task finished',
    );
    try {
      const ack = await stream.finish(result);
      this.logAck(a, ack);
    } finally {
      this.reporting.delete(key(a.taskId, a.attempt));
    }
  }

  /** The answer's counts where the provider gave none; a counting failure costs the counts only. */
  private countUsage(a: Assignment, text: string): Promise<Usage | undefined> {
    return estimateUsage(a, text).catch((error: unknown) => {
      const err = error instanceof Error ? error.message : String(error);
      this.log.warn({ taskId: a.taskId, err }, 'could not count the answer’s tokens');
      return undefined;
    });
  }

  private describeFailure(entry: Running, error: unknown): { error: string; errorCode: string } {
    const code = (error as { code?: unknown } | undefined)?.code;
    if (entry.stopReason || code === ABORTED_CODE) {
      const reason = entry.stopReason ?? 'cancelled';
      const messages: Record<AttemptStopCode, string> = {
        cancelled: 'cancelled by the master',
        deadline_exceeded: 'task deadline exceeded',
        shutdown: 'worker shutting down',
      };
      return { error: messages[reason], errorCode: reason };
    }
    const raw = error instanceof Error ? error.message : String(error);
    const message = scrubSecrets(raw, [entry.assignment.apiKey]) || 'provider failed';
    return { error: message, errorCode: typeof code === 'string' ? code : PROVIDER_ERROR_CODE };
  }

  private logAck(a: Assignment, ack: TaskAck__Output | undefined): void {
    const ref = { taskId: a.taskId, attempt: a.attempt };
    if (!ack) this.log.warn(ref, 'master unreachable: result not delivered');
    else if (ack.accepted) this.log.info(ref, 'master accepted the result');
    else this.log.warn({ ...ref, reason: ack.reason }, 'master rejected the result');
  }
}
