// Original file: proto/flota/v1/master.proto

import type { TaskChunk as _flota_v1_TaskChunk, TaskChunk__Output as _flota_v1_TaskChunk__Output } from '../../flota/v1/TaskChunk.ts';
import type { TaskResult as _flota_v1_TaskResult, TaskResult__Output as _flota_v1_TaskResult__Output } from '../../flota/v1/TaskResult.ts';

export interface WorkerReport {
  'chunk'?: (_flota_v1_TaskChunk | null);
  'result'?: (_flota_v1_TaskResult | null);
  'report'?: "chunk"|"result";
}

export interface WorkerReport__Output {
  'chunk'?: (_flota_v1_TaskChunk__Output | null);
  'result'?: (_flota_v1_TaskResult__Output | null);
  'report'?: "chunk"|"result";
}
