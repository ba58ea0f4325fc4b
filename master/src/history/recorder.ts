/**
 * Writes the task history from the master's task events: what this master
 * sees of each task (its submission, assignments, retries, new priorities,
 * its end) becomes an update of the task's record. Updates wait in a buffer,
 * one per task, and go to the store together every FLUSH_MS or once
 * FLUSH_TASKS tasks wait: one store round trip per flush, never one per
 * event. Nothing here can slow or fail a task: a store that is away only
 * makes the buffer wait; past MAX_BUFFERED tasks the oldest are dropped
 * (counted, and said in a warning). Old records are trimmed every TRIM_MS.
 */
import type { Logger } from '../../../common/logger.ts';
import { PROMPT_PREVIEW_CHARS, type TimelineEvent } from '../../../proto/src/schemas/console.ts';
import type { TaskAssignedEvent, TaskRetryingEvent } from '../../../proto/src/socket-events.ts';
import { type HistoryUpdate, mergeUpdate } from '../store/history-records.ts';
import type { StoreHistory } from '../store/types.ts';
import {
  DEFAULT_TENANT,
  type StoredTask,
  type TaskJobData,
  toTaskView,
} from '../tasks/task-data.ts';
import type { TaskEvents, TaskRecordEvents } from '../tasks/task-events.ts';

/**
 * Longest a recorded event waits for its flush. A second lets most tasks'
 * submission, assignment and end reach the store as one merged update (with
 * 100 ms a busy master wrote each task two or three times: 30 more store
 * commands per task, measured), and the console's table is at most a second
 * behind.
 */
export const FLUSH_MS = 1_000;
/** A flush starts at once when this many tasks wait. */
export const FLUSH_TASKS = 2_000;
/** Most tasks waiting while the store is away, besides the batch being written; the oldest go first. */
export const MAX_BUFFERED = 20_000;
/** How often records older than the retention are deleted. */
export const TRIM_MS = 10 * 60_000;
/** At most one warning about dropped records this often. */
const DROP_WARNING_MS = 60_000;

export interface HistoryRecorderDeps {
  history: StoreHistory;
  events: TaskEvents;
  records: TaskRecordEvents;
  /** HISTORY_RETENTION_HOURS in ms. */
  retentionMs: number;
  log: Logger;
}

export class HistoryRecorder {
  private buffer = new Map<string, HistoryUpdate>();
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private trimTimer: NodeJS.Timeout | undefined;
  private lastDropWarning = 0;
  private closed = false;
  /** Updates dropped because the buffer was full (the store away too long). */
  dropped = 0;
  private readonly log: Logger;
  private readonly detach: Array<() => void> = [];

  constructor(private readonly deps: HistoryRecorderDeps) {
    this.log = deps.log.child({ component: 'history' });
  }

  start(): void {
    const { events, records } = this.deps;
    // The emitter calls these inside the task's own transition: nothing may escape them.
    const guarded =
      <A extends unknown[]>(record: (...args: A) => void) =>
      (...args: A) => {
        try {
          record(...args);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'task history: event not recorded');
        }
      };
    const onSubmitted = guarded((data: TaskJobData) => this.submitted(data));
    const onFinished = guarded((task: StoredTask) => this.finished(task));
    const onReprioritized = guarded((taskId: string, priority: number, at: number) =>
      this.add({
        id: taskId,
        priority,
        priorityAt: at,
        events: [{ at, kind: 'reprioritized', detail: String(priority) }],
      }),
    );
    const onAssigned = guarded((_s: string | undefined, e: TaskAssignedEvent) => this.assigned(e));
    const onRetrying = guarded((_s: string | undefined, e: TaskRetryingEvent) => this.retrying(e));
    records.on('submitted', onSubmitted);
    records.on('finished', onFinished);
    records.on('reprioritized', onReprioritized);
    events.on('assigned', onAssigned);
    events.on('retrying', onRetrying);
    this.detach.push(
      () => records.off('submitted', onSubmitted),
      () => records.off('finished', onFinished),
      () => records.off('reprioritized', onReprioritized),
      () => events.off('assigned', onAssigned),
      () => events.off('retrying', onRetrying),
    );
    const trim = () => void this.trim();
    trim();
    this.trimTimer = setInterval(trim, TRIM_MS);
    this.trimTimer.unref();
  }

  /** Deletes records past the retention; failures are logged and tried again later. */
  async trim(now = Date.now()): Promise<number> {
    try {
      const removed = await this.deps.history.trim(now - this.deps.retentionMs);
      if (removed > 0) this.log.info({ removed }, 'task history trimmed');
      return removed;
    } catch (err) {
      // A master stopping (a start-up that failed, a shutdown) closes the store under a trim.
      if (!this.closed) {
        this.log.warn({ err: (err as Error).message }, 'task history trim failed; retrying later');
      }
      return 0;
    }
  }

  /** Writes whatever waits; resolves once the store has it (or refused it). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer.size === 0) return;
    const batch = this.buffer;
    this.buffer = new Map();
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
      // What came meanwhile (or came back) goes in the next flush.
      if (this.buffer.size > 0 && !this.closed) this.schedule();
    });
    await this.flushing;
  }

  /** Stops listening and writes what is left (once). */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const off of this.detach.splice(0)) off();
    clearInterval(this.trimTimer);
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async write(batch: Map<string, HistoryUpdate>): Promise<void> {
    try {
      await this.deps.history.write([...batch.values()]);
    } catch (err) {
      // Back in front of anything newer, to go with the next flush; the bound applies.
      for (const update of this.buffer.values()) {
        const older = batch.get(update.id);
        batch.set(update.id, older ? mergeUpdate(older, update) : update);
      }
      this.buffer = batch;
      this.bound();
      this.log.debug(
        { err: (err as Error).message, waiting: batch.size },
        'task history not written; retrying',
      );
    }
  }

  private add(update: HistoryUpdate): void {
    if (this.closed) return;
    const waiting = this.buffer.get(update.id);
    if (waiting) mergeUpdate(waiting, update);
    else {
      this.buffer.set(update.id, update);
      this.bound();
    }
    if (this.buffer.size >= FLUSH_TASKS && !this.flushing) void this.flush();
    else this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, FLUSH_MS);
    this.timer.unref();
  }

  /** Drops the oldest waiting tasks past MAX_BUFFERED. */
  private bound(): void {
    let over = this.buffer.size - MAX_BUFFERED;
    if (over <= 0) return;
    this.dropped += over;
    for (const id of this.buffer.keys()) {
      if (over-- <= 0) break;
      this.buffer.delete(id);
    }
    const now = Date.now();
    if (now - this.lastDropWarning >= DROP_WARNING_MS) {
      this.lastDropWarning = now;
      this.log.warn(
        { dropped: this.dropped, max: MAX_BUFFERED },
        'task history: the store has not taken records for a while; dropping the oldest',
      );
    }
  }

  private submitted(data: TaskJobData): void {
    const at = data.submittedAt;
    this.add({
      id: data.taskId,
      tenant: data.tenant ?? DEFAULT_TENANT,
      model: data.model,
      prompt: data.prompt.slice(0, PROMPT_PREVIEW_CHARS),
      submittedAt: at,
      state: 'queued',
      stateAt: at,
      priority: data.priority,
      priorityAt: at,
      attempts: 0,
      events: [{ at, kind: 'queued' }],
    });
  }

  private assigned(e: TaskAssignedEvent): void {
    const at = Date.now();
    this.add({
      id: e.taskId,
      state: 'running',
      stateAt: at,
      attempts: e.attempt,
      workerId: e.workerId,
      events: [{ at, kind: 'assigned', attempt: e.attempt, workerId: e.workerId }],
    });
  }

  private retrying(e: TaskRetryingEvent): void {
    const at = Date.now();
    this.add({
      id: e.taskId,
      state: 'queued',
      stateAt: at,
      events: [{ at, kind: 'retrying', attempt: e.attempt, detail: e.reason }],
    });
  }

  private finished(task: StoredTask): void {
    const view = toTaskView(task);
    const { data, result } = task;
    const at =
      result?.committedAt ??
      data.ended?.at ??
      task.finishedOn ??
      view.timings.finishedAt ??
      Date.now();
    const state = view.state;
    if (state !== 'completed' && state !== 'failed' && state !== 'cancelled') return;
    const event: TimelineEvent = { at, kind: state, attempt: view.attempt };
    if (view.workerId !== undefined) event.workerId = view.workerId;
    if (view.error !== undefined) event.detail = view.error;
    this.add({
      id: data.taskId,
      tenant: data.tenant ?? DEFAULT_TENANT,
      model: data.model,
      prompt: data.prompt.slice(0, PROMPT_PREVIEW_CHARS),
      submittedAt: data.submittedAt,
      state,
      stateAt: at,
      attempts: view.attempt,
      workerId: view.workerId,
      finishedAt: at,
      totalMs: view.timings.totalMs ?? at - data.submittedAt,
      ttftMs: view.timings.ttftMs,
      inputTokens: view.usage?.inputTokens,
      outputTokens: view.usage?.outputTokens,
      computeMs: result?.processingMs,
      cached: view.cache?.hit === true,
      error: view.error,
      events: [event],
    });
  }
}
