// Original file: proto/flota/v1/master.proto

import type { TaskAck as _flota_v1_TaskAck, TaskAck__Output as _flota_v1_TaskAck__Output } from '../../flota/v1/TaskAck.ts';

export interface MasterAcks {
  'acks'?: (_flota_v1_TaskAck)[];
}

export interface MasterAcks__Output {
  'acks': (_flota_v1_TaskAck__Output)[];
}
