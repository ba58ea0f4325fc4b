/**
 * Queue names. Jobs go to one BullMQ queue per capability class and model so
 * a free CPU worker never waits behind a GPU-only job, and a job for a model
 * nobody serves never blocks the others.
 */
export type CapabilityClass = 'any' | 'gpu';

export interface QueueKey {
  readonly capability: CapabilityClass;
  readonly model: string;
}

const QUEUE_PREFIX = 'tasks';
// BullMQ forbids ':' in queue names; models such as "llama3:8b" need it.
const encodeModel = (model: string) => encodeURIComponent(model).replace(/%3A/gi, '~');
const decodeModel = (text: string) => decodeURIComponent(text.replace(/~/g, '%3A'));

export function queueName(key: QueueKey): string {
  return `${QUEUE_PREFIX}.${key.capability}.${encodeModel(key.model)}`;
}

export function parseQueueName(name: string): QueueKey | undefined {
  const match = /^tasks\.(any|gpu)\.(.+)$/.exec(name);
  if (!match) return undefined;
  return { capability: match[1] as CapabilityClass, model: decodeModel(match[2] as string) };
}

/** Job name used for every task job (BullMQ requires one). */
export const TASK_JOB_NAME = 'task';

/**
 * Task ids name their queue (`any.echo.3f…`), so any master can find a task
 * from its id alone, with no extra index, even after a restart.
 */
export function taskIdFor(key: QueueKey, unique: string): string {
  return `${key.capability}.${encodeModel(key.model)}.${unique}`;
}

export function queueKeyOfTaskId(taskId: string): QueueKey | undefined {
  const match = /^(any|gpu)\.(.+)\.([A-Za-z0-9_-]+)$/.exec(taskId);
  if (!match) return undefined;
  try {
    return { capability: match[1] as CapabilityClass, model: decodeModel(match[2] as string) };
  } catch {
    return undefined;
  }
}
