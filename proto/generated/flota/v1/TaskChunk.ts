// Original file: proto/flota/v1/master.proto

import type { TaskResult as _flota_v1_TaskResult, TaskResult__Output as _flota_v1_TaskResult__Output } from '../../flota/v1/TaskResult.ts';

export interface TaskChunk {
  'taskId'?: (string);
  'attempt'?: (number);
  'lease'?: (string);
  'seq'?: (number);
  'text'?: (string);
  'final'?: (_flota_v1_TaskResult | null);
}

export interface TaskChunk__Output {
  'taskId': (string);
  'attempt': (number);
  'lease': (string);
  'seq': (number);
  'text': (string);
  'final': (_flota_v1_TaskResult__Output | null);
}
