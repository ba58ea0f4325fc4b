import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { TaskEventName, TaskEventPayloads } from '../../../proto/src/socket-events.ts';
import { workerView } from '../../helpers/worker-view.ts';

/** What the page shows when `GET /api/tasks/:id` answers 404 for a task it waits for. */
export const UNKNOWN_TASK_ERROR = 'This task is no longer known to the master.';

/** Hands out items in arrival order to whoever awaits them. */
export function channel<T>() {
  const items: T[] = [];
  const waiters: Array<(value: T) => void> = [];
  return {
    push(item: T) {
      const waiter = waiters.shift();
      if (waiter) waiter(item);
      else items.push(item);
    },
    next(): Promise<T> {
      const item = items.shift();
      if (item !== undefined) return Promise.resolve(item);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

type ResyncEvent = {
  [E in TaskEventName]: [E, TaskEventPayloads[E]];
}[TaskEventName];

/** The event that tells a client the current state of a task (resync after a lost outbox). */
export function resyncEvent(taskId: string, view: TaskView): ResyncEvent {
  switch (view.state) {
    case 'queued':
      return ['task:queued', { taskId }];
    case 'running':
      return [
        'task:assigned',
        {
          taskId,
          attempt: view.attempt,
          workerId: view.workerId ?? 'unknown-worker',
          workerKind: view.workerKind ?? 'cpu',
        },
      ];
    case 'completed':
      return ['task:completed', view];
    default:
      return ['task:failed', view];
  }
}

export function worker(overrides: Partial<WorkerView> & Pick<WorkerView, 'id'>): WorkerView {
  return workerView({ cpuPct: 12, memPct: 41, ...overrides });
}

export function taskView(
  taskId: string,
  overrides: Partial<TaskView> & Pick<TaskView, 'state'>,
): TaskView {
  const submittedAt = 1_700_000_000_000;
  return {
    id: taskId,
    model: 'echo',
    priority: 0,
    requires: {},
    attempt: 1,
    timings: { submittedAt, queueMs: 12, processingMs: 1500, totalMs: 1534 },
    ...overrides,
  };
}
