import { EventEmitter } from 'node:events';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type {
  TaskAssignedEvent,
  TaskChunkEvent,
  TaskQueuedEvent,
  TaskRetryingEvent,
} from '../../../proto/src/socket-events.ts';
import type { StoredTask, TaskJobData } from './task-data.ts';

/** Everything a browser session hears about its tasks; `sessionId` routes it. */
export interface TaskEventMap {
  queued: [sessionId: string | undefined, event: TaskQueuedEvent];
  assigned: [sessionId: string | undefined, event: TaskAssignedEvent];
  chunk: [sessionId: string | undefined, event: TaskChunkEvent];
  /** An attempt was lost; the task is back in the queue for another worker. */
  retrying: [sessionId: string | undefined, event: TaskRetryingEvent];
  completed: [sessionId: string | undefined, task: TaskView];
  /** Failed, cancelled or timed out (see `task.state` and `task.error`). */
  failed: [sessionId: string | undefined, task: TaskView];
}

/** The Socket.IO event each task event becomes. */
export const SOCKET_EVENT_OF = {
  queued: 'task:queued',
  assigned: 'task:assigned',
  chunk: 'task:chunk',
  retrying: 'task:retrying',
  completed: 'task:completed',
  failed: 'task:failed',
} as const satisfies Record<keyof TaskEventMap, string>;

export class TaskEvents extends EventEmitter<TaskEventMap> {}

/**
 * What the master knows of a task beyond its session's events, for the task
 * history and usage: the whole request with its tenant, the stored end, a new
 * priority. Sessions never hear these.
 */
export interface TaskRecordMap {
  /** Stored: queued, or answered from the result cache (then `finished` follows). */
  submitted: [data: TaskJobData];
  /** Completed, failed or cancelled for good, as the store holds it. */
  finished: [task: StoredTask];
  reprioritized: [taskId: string, priority: number, at: number];
}

export class TaskRecordEvents extends EventEmitter<TaskRecordMap> {}
