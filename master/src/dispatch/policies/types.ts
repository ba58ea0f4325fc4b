import type { WorkerRecord } from '../../registry/worker-record.ts';

export interface TaskNeeds {
  model: string;
  gpu: boolean;
}

/**
 * A scheduling policy picks one worker among candidates that already meet the
 * task's requirements and have a free slot. It must not mutate the records.
 */
export interface DispatchPolicy {
  readonly name: string;
  pick(candidates: readonly WorkerRecord[], task: TaskNeeds): WorkerRecord | undefined;
}
