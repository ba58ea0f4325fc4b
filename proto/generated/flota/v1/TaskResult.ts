// Original file: proto/flota/v1/master.proto

import type { Usage as _flota_v1_Usage, Usage__Output as _flota_v1_Usage__Output } from '../../flota/v1/Usage.ts';
import type { Long } from '@grpc/proto-loader';

export interface TaskResult {
  'taskId'?: (string);
  'attempt'?: (number);
  'lease'?: (string);
  'workerId'?: (string);
  'text'?: (string);
  'error'?: (string);
  'errorCode'?: (string);
  'usage'?: (_flota_v1_Usage | null);
  'startedAt'?: (number | string | Long);
  'finishedAt'?: (number | string | Long);
  'processingMs'?: (number | string | Long);
  'model'?: (string);
}

export interface TaskResult__Output {
  'taskId': (string);
  'attempt': (number);
  'lease': (string);
  'workerId': (string);
  'text': (string);
  'error': (string);
  'errorCode': (string);
  'usage': (_flota_v1_Usage__Output | null);
  'startedAt': (number);
  'finishedAt': (number);
  'processingMs': (number);
  'model': (string);
}
