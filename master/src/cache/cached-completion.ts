/**
 * Completes a task answered from the result cache. The submission put the
 * answer in the job's data at BullMQ priority 0, so the first lane that takes
 * the queue gets it (with or without a free worker, as for a cancelled job)
 * and commits it here. The task is then an ordinary completed task: its
 * result lives in the queue and its session hears `task:completed`.
 */
import type { Logger } from '../../../common/logger.ts';
import { attemptOf, type TaskJob, type TaskJobResult, toTaskView } from '../tasks/task-data.ts';
import type { TaskEvents } from '../tasks/task-events.ts';

export interface CachedCompletionDeps {
  events: TaskEvents;
  log: Logger;
}

/** True once the cached answer is committed; false if the job has none or the store refused. */
export async function completeFromCache(
  job: TaskJob,
  token: string,
  deps: CachedCompletionDeps,
): Promise<boolean> {
  const cached = job.data.cached;
  if (!cached) return false;
  const now = Date.now();
  const value: TaskJobResult = {
    text: cached.text,
    attempt: attemptOf(job),
    assignedAt: now,
    startedAt: now,
    finishedAt: now,
    processingMs: 0,
    committedAt: now,
    usage: cached.usage,
    cache: { hit: true, cachedAt: cached.cachedAt },
  };
  const taskId = job.data.taskId;
  try {
    await job.moveToCompleted(value, token, false);
  } catch (err) {
    // The lock lapses and the stalled check puts the job back; a later take completes it.
    deps.log.error({ err, taskId }, 'cached answer could not be committed');
    return false;
  }
  job.returnvalue = value;
  job.finishedOn = now;
  deps.log.info({ taskId, cachedAt: cached.cachedAt }, 'task answered from the result cache');
  deps.events.emit('completed', job.data.sessionId, toTaskView(job, 'completed'));
  return true;
}
