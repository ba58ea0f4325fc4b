// Original file: proto/flota/v1/master.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { EnrollReply as _flota_v1_EnrollReply, EnrollReply__Output as _flota_v1_EnrollReply__Output } from '../../flota/v1/EnrollReply.ts';
import type { EnrollRequest as _flota_v1_EnrollRequest, EnrollRequest__Output as _flota_v1_EnrollRequest__Output } from '../../flota/v1/EnrollRequest.ts';
import type { MasterAcks as _flota_v1_MasterAcks, MasterAcks__Output as _flota_v1_MasterAcks__Output } from '../../flota/v1/MasterAcks.ts';
import type { WorkerReports as _flota_v1_WorkerReports, WorkerReports__Output as _flota_v1_WorkerReports__Output } from '../../flota/v1/WorkerReports.ts';

export interface MasterClient extends grpc.Client {
  Connect(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_flota_v1_WorkerReports, _flota_v1_MasterAcks__Output>;
  Connect(options?: grpc.CallOptions): grpc.ClientDuplexStream<_flota_v1_WorkerReports, _flota_v1_MasterAcks__Output>;
  connect(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_flota_v1_WorkerReports, _flota_v1_MasterAcks__Output>;
  connect(options?: grpc.CallOptions): grpc.ClientDuplexStream<_flota_v1_WorkerReports, _flota_v1_MasterAcks__Output>;
  
  Enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  Enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  Enroll(argument: _flota_v1_EnrollRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  Enroll(argument: _flota_v1_EnrollRequest, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  
}

export interface MasterHandlers extends grpc.UntypedServiceImplementation {
  Connect: grpc.handleBidiStreamingCall<_flota_v1_WorkerReports__Output, _flota_v1_MasterAcks>;
  
  Enroll: grpc.handleUnaryCall<_flota_v1_EnrollRequest__Output, _flota_v1_EnrollReply>;
  
}

export interface MasterDefinition extends grpc.ServiceDefinition {
  Connect: MethodDefinition<_flota_v1_WorkerReports, _flota_v1_MasterAcks, _flota_v1_WorkerReports__Output, _flota_v1_MasterAcks__Output>
  Enroll: MethodDefinition<_flota_v1_EnrollRequest, _flota_v1_EnrollReply, _flota_v1_EnrollRequest__Output, _flota_v1_EnrollReply__Output>
}
