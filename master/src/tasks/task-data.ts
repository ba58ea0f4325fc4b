/** What a task stores in the queue, and how a stored task reads back as a TaskView. */
import type { QueueKey } from '../../../proto/src/queues.ts';
import type {
  ChatMessage,
  GenerationParams,
  TaskState,
  TaskView,
} from '../../../proto/src/schemas/task.ts';
import type { WorkerKind } from '../../../proto/src/schemas/worker.ts';

/** Stored in the queue; never holds a secret (API keys live in master memory only). */
export interface TaskJobData {
  taskId: string;
  sessionId?: string;
  prompt: string;
  /** Earlier turns of the conversation, oldest first. */
  messages?: ChatMessage[];
  model: string;
  gpu: boolean;
  /** Labels the worker must carry with these values (part of the queue key); absent when none. */
  labels?: Record<string, string>;
  params: GenerationParams;
  /** The user's priority, 0–1000 (higher first); the job's BullMQ priority encodes it (fair-priority.ts). */
  priority: number;
  submittedAt: number;
  timeoutMs: number;
  /**
   * Set when the master ends the task without an answer (cancel, timeout).
   * A queued job carrying it is failed by the first lane that takes it.
   */
  ended?: TaskEnding;
  /** The API token's tenant (DEFAULT_TENANT without tokens); absent on jobs from before tenants. */
  tenant?: string;
  /**
   * What the last lost attempt had streamed when it died: the next attempt
   * continues it on a worker that can (lifecycle.ts).
   */
  partial?: { attempt: number; text: string };
  /** The request said `cache: false`: its answer is not stored in the result cache. */
  noCache?: true;
}

/** Where a task stands in the store. */
export type StoredState = 'queued' | 'running' | 'completed' | 'failed';

/** A task as the store holds it. */
export interface StoredTask {
  data: TaskJobData;
  state: StoredState;
  /** The answer, once completed. */
  result?: TaskJobResult;
  /** Why it failed (the store's words: the last attempt's error). */
  failedReason?: string;
  finishedOn?: number;
  /** Attempts that ended (failed or retried). */
  attemptsMade: number;
}

/** The tenant of every request when no API tokens are configured. */
export const DEFAULT_TENANT = 'default';

export interface TaskEnding {
  state: 'cancelled' | 'failed';
  reason: string;
  at: number;
}

/** The job's return value once completed. */
export interface TaskJobResult {
  text: string;
  /** Absent for an answer from the result cache: no worker ran it. */
  workerId?: string;
  workerKind?: WorkerKind;
  attempt: number;
  assignedAt: number;
  startedAt: number;
  finishedAt: number;
  processingMs: number;
  committedAt: number;
  /** When the master got the answer's first chunk (absent for an answer that was not streamed). */
  firstChunkAt?: number;
  usage?: { inputTokens: number; outputTokens: number; estimated?: true };
  /** Set when the answer came from the result cache; `cachedAt` is when it was stored. */
  cache?: { hit: true; cachedAt: number };
}

export function queueKeyOf(data: Pick<TaskJobData, 'model' | 'gpu' | 'labels'>): QueueKey {
  const key = { capability: data.gpu ? 'gpu' : 'any', model: data.model } as const;
  return data.labels && Object.keys(data.labels).length > 0 ? { ...key, labels: data.labels } : key;
}

/** Live facts the master holds for a running task (the queue does not know them). */
export interface RunningInfo {
  workerId: string;
  workerKind: WorkerKind;
  assignedAt: number;
  attempt: number;
}

/** Absolute time after which the task is given up (queued time included). */
export const deadlineOf = (data: TaskJobData) => data.submittedAt + data.timeoutMs;

export function toTaskView(task: StoredTask, running?: RunningInfo): TaskView {
  const data = task.data;
  const result = task.result;
  let state: TaskState = task.state;
  if (data.ended && state !== 'completed') state = data.ended.state;
  const view: TaskView = {
    id: data.taskId,
    state,
    model: data.model,
    priority: data.priority,
    requires: data.labels ? { gpu: data.gpu, labels: data.labels } : { gpu: data.gpu },
    attempt: result?.attempt ?? running?.attempt ?? task.attemptsMade,
    timings: { submittedAt: data.submittedAt },
  };
  if (state === 'completed' && result) {
    view.result = result.text;
    view.workerId = result.workerId;
    view.workerKind = result.workerKind;
    view.timings = {
      submittedAt: data.submittedAt,
      assignedAt: result.assignedAt,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      queueMs: result.assignedAt - data.submittedAt,
      processingMs: result.processingMs,
      totalMs: result.committedAt - data.submittedAt,
    };
    if (result.firstChunkAt !== undefined) {
      view.timings.firstChunkAt = result.firstChunkAt;
      view.timings.ttftMs = result.firstChunkAt - data.submittedAt;
    }
    if (result.cache) view.cache = { hit: true, cachedAt: result.cache.cachedAt };
    if (result.usage) view.usage = result.usage;
  } else if (state === 'failed' || state === 'cancelled') {
    view.error = data.ended?.reason || task.failedReason || state;
    if (task.finishedOn) view.timings.totalMs = task.finishedOn - data.submittedAt;
  } else if (state === 'running' && running) {
    view.workerId = running.workerId;
    view.workerKind = running.workerKind;
    view.timings.assignedAt = running.assignedAt;
    view.timings.queueMs = running.assignedAt - data.submittedAt;
  }
  return view;
}
