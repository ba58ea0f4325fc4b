/** One BullMQ Queue per task queue name, opened on first use and shared by every module. */
import { type QueueKey, queueKeyOfTaskId, queueName } from '../../../proto/src/queues.ts';
import type { QueueStore, StoreQueue } from '../store/types.ts';
import type { TaskJob, TaskJobData, TaskJobResult } from './task-data.ts';

export type TaskQueue = StoreQueue<TaskJobData, TaskJobResult>;

export class TaskQueues {
  private readonly queues = new Map<string, TaskQueue>();

  constructor(private readonly store: QueueStore) {}

  get(key: QueueKey): TaskQueue {
    const name = queueName(key);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = this.store.createQueue<TaskJobData, TaskJobResult>(name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** The queue a task id names, or undefined for an id that names none. */
  ofTask(taskId: string): TaskQueue | undefined {
    const key = queueKeyOfTaskId(taskId);
    return key ? this.get(key) : undefined;
  }

  /** The job of a task, if the store still has it. */
  async job(taskId: string): Promise<TaskJob | undefined> {
    const queue = this.ofTask(taskId);
    return queue ? ((await queue.getJob(taskId)) as TaskJob | undefined) : undefined;
  }

  entries(): Array<[string, TaskQueue]> {
    return [...this.queues];
  }
}
