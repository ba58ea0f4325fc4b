/**
 * Follows single tasks by id, for callers that wait on one task rather than a
 * session (the OpenAI-compatible API): one listener per event kind on
 * TaskEvents, and a map from task id to the callers watching it, so an event
 * costs one look-up however many requests are open.
 */
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type {
  TaskAssignedEvent,
  TaskChunkEvent,
  TaskRetryingEvent,
} from '../../../proto/src/socket-events.ts';
import type { TaskEventMap, TaskEvents } from './task-events.ts';

/** What a watcher hears about its task. */
export interface TaskWatcher {
  assigned?(event: TaskAssignedEvent): void;
  chunk?(event: TaskChunkEvent): void;
  retrying?(event: TaskRetryingEvent): void;
  /** Completed, failed or cancelled: the last call a watcher gets. */
  ended(task: TaskView): void;
}

export class TaskWatch {
  private readonly watchers = new Map<string, Set<TaskWatcher>>();
  private readonly listeners: Array<[keyof TaskEventMap, (...args: never[]) => void]>;

  constructor(private readonly events: TaskEvents) {
    const onEnded = (_session: string | undefined, task: TaskView) => {
      const set = this.watchers.get(task.id);
      if (!set) return;
      this.watchers.delete(task.id);
      for (const watcher of set) watcher.ended(task);
    };
    this.listeners = [
      [
        'assigned',
        (_s: unknown, e: TaskAssignedEvent) => this.each(e.taskId, (w) => w.assigned?.(e)),
      ],
      ['chunk', (_s: unknown, e: TaskChunkEvent) => this.each(e.taskId, (w) => w.chunk?.(e))],
      [
        'retrying',
        (_s: unknown, e: TaskRetryingEvent) => this.each(e.taskId, (w) => w.retrying?.(e)),
      ],
      ['completed', onEnded],
      ['failed', onEnded],
    ];
    for (const [kind, listener] of this.listeners) events.on(kind, listener as never);
  }

  /** Starts watching; the returned function stops (idempotent). */
  watch(taskId: string, watcher: TaskWatcher): () => void {
    let set = this.watchers.get(taskId);
    if (!set) {
      set = new Set();
      this.watchers.set(taskId, set);
    }
    set.add(watcher);
    return () => {
      const current = this.watchers.get(taskId);
      if (!current?.delete(watcher)) return;
      if (current.size === 0) this.watchers.delete(taskId);
    };
  }

  /** Tasks watched now (for metrics and tests). */
  size(): number {
    return this.watchers.size;
  }

  close(): void {
    for (const [kind, listener] of this.listeners) this.events.off(kind, listener as never);
    this.watchers.clear();
  }

  private each(taskId: string, call: (watcher: TaskWatcher) => void): void {
    const set = this.watchers.get(taskId);
    if (set) for (const watcher of set) call(watcher);
  }
}
