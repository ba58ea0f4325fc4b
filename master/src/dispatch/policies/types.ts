import type { WorkerRecord } from '../../registry/worker-record.ts';

/** What a lane asks for; one lane (and one policy state) per distinct value. */
export interface TaskNeeds {
  model: string;
  gpu: boolean;
  /** Labels the worker must carry with these exact values (filtered before pick). */
  labels?: Readonly<Record<string, string>>;
}

/** One finished task, as the result handler saw it. */
export interface CompletionSample {
  workerId: string;
  model: string;
  /** Provider time the worker measured; non-finite or negative samples are ignored. */
  processingMs: number;
}

/**
 * A scheduling policy picks one worker among candidates that already meet the
 * task's requirements and have a free slot. It must not mutate the records,
 * and it must return one of the candidates (or undefined when there are none).
 *
 * Every policy keeps its rotation state per lane (`laneKey(task)`), so lanes
 * never disturb each other, and is deterministic: the same calls in the same
 * order give the same answers.
 */
export interface DispatchPolicy {
  readonly name: string;
  pick(candidates: readonly WorkerRecord[], task: TaskNeeds): WorkerRecord | undefined;
  /**
   * The last `pick` for this lane found no job to hand over (the queue was
   * empty): undo whatever that pick advanced, so idle polling never skews a
   * rotation. A call that does not match the lane's last pick is ignored.
   */
  unpick?(workerId: string, task: TaskNeeds): void;
  /** A task finished on a worker (the master calls this for every completed task). */
  observe?(sample: CompletionSample): void;
  /** The worker went offline: drop everything known about it. */
  forget?(workerId: string): void;
}

/** The key of a lane's policy state: capability class, model and label requirements. */
export function laneKey(task: TaskNeeds): string {
  const labels = Object.entries(task.labels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${task.gpu ? 'gpu' : 'any'}\u0000${task.model}\u0000${labels}`;
}

/** Id order, the tie-break every policy uses; plain code-unit order so it never depends on locale. */
export function byId(a: WorkerRecord, b: WorkerRecord): number {
  const x = a.status.id;
  const y = b.status.id;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The smallest of `values` (Infinity for none), without spreading thousands of arguments. */
export function smallest(values: readonly number[]): number {
  let min = Number.POSITIVE_INFINITY;
  for (const v of values) if (v < min) min = v;
  return min;
}
