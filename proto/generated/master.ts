import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { EnrollReply as _flota_v1_EnrollReply, EnrollReply__Output as _flota_v1_EnrollReply__Output } from './flota/v1/EnrollReply.ts';
import type { EnrollRequest as _flota_v1_EnrollRequest, EnrollRequest__Output as _flota_v1_EnrollRequest__Output } from './flota/v1/EnrollRequest.ts';
import type { MasterClient as _flota_v1_MasterClient, MasterDefinition as _flota_v1_MasterDefinition } from './flota/v1/Master.ts';
import type { MasterAcks as _flota_v1_MasterAcks, MasterAcks__Output as _flota_v1_MasterAcks__Output } from './flota/v1/MasterAcks.ts';
import type { TaskAck as _flota_v1_TaskAck, TaskAck__Output as _flota_v1_TaskAck__Output } from './flota/v1/TaskAck.ts';
import type { TaskChunk as _flota_v1_TaskChunk, TaskChunk__Output as _flota_v1_TaskChunk__Output } from './flota/v1/TaskChunk.ts';
import type { TaskResult as _flota_v1_TaskResult, TaskResult__Output as _flota_v1_TaskResult__Output } from './flota/v1/TaskResult.ts';
import type { Usage as _flota_v1_Usage, Usage__Output as _flota_v1_Usage__Output } from './flota/v1/Usage.ts';
import type { WorkerReport as _flota_v1_WorkerReport, WorkerReport__Output as _flota_v1_WorkerReport__Output } from './flota/v1/WorkerReport.ts';
import type { WorkerReports as _flota_v1_WorkerReports, WorkerReports__Output as _flota_v1_WorkerReports__Output } from './flota/v1/WorkerReports.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  flota: {
    v1: {
      EnrollReply: MessageTypeDefinition<_flota_v1_EnrollReply, _flota_v1_EnrollReply__Output>
      EnrollRequest: MessageTypeDefinition<_flota_v1_EnrollRequest, _flota_v1_EnrollRequest__Output>
      Master: SubtypeConstructor<typeof grpc.Client, _flota_v1_MasterClient> & { service: _flota_v1_MasterDefinition }
      MasterAcks: MessageTypeDefinition<_flota_v1_MasterAcks, _flota_v1_MasterAcks__Output>
      TaskAck: MessageTypeDefinition<_flota_v1_TaskAck, _flota_v1_TaskAck__Output>
      TaskChunk: MessageTypeDefinition<_flota_v1_TaskChunk, _flota_v1_TaskChunk__Output>
      TaskResult: MessageTypeDefinition<_flota_v1_TaskResult, _flota_v1_TaskResult__Output>
      Usage: MessageTypeDefinition<_flota_v1_Usage, _flota_v1_Usage__Output>
      WorkerReport: MessageTypeDefinition<_flota_v1_WorkerReport, _flota_v1_WorkerReport__Output>
      WorkerReports: MessageTypeDefinition<_flota_v1_WorkerReports, _flota_v1_WorkerReports__Output>
    }
  }
}

