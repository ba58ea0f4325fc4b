import { EventEmitter } from 'node:events';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type {
  TaskAssignedEvent,
  TaskChunkEvent,
  TaskQueuedEvent,
} from '../../../proto/src/socket-events.ts';

/** Everything a browser session hears about its tasks; `sessionId` routes it. */
export interface TaskEventMap {
  queued: [sessionId: string | undefined, event: TaskQueuedEvent];
  assigned: [sessionId: string | undefined, event: TaskAssignedEvent];
  chunk: [sessionId: string | undefined, event: TaskChunkEvent];
  completed: [sessionId: string | undefined, task: TaskView];
  failed: [sessionId: string | undefined, task: TaskView];
}

export class TaskEvents extends EventEmitter<TaskEventMap> {}
