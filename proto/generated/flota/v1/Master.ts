// Original file: proto/flota/v1/master.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { EnrollReply as _flota_v1_EnrollReply, EnrollReply__Output as _flota_v1_EnrollReply__Output } from '../../flota/v1/EnrollReply.ts';
import type { EnrollRequest as _flota_v1_EnrollRequest, EnrollRequest__Output as _flota_v1_EnrollRequest__Output } from '../../flota/v1/EnrollRequest.ts';
import type { TaskAck as _flota_v1_TaskAck, TaskAck__Output as _flota_v1_TaskAck__Output } from '../../flota/v1/TaskAck.ts';
import type { TaskChunk as _flota_v1_TaskChunk, TaskChunk__Output as _flota_v1_TaskChunk__Output } from '../../flota/v1/TaskChunk.ts';
import type { TaskResult as _flota_v1_TaskResult, TaskResult__Output as _flota_v1_TaskResult__Output } from '../../flota/v1/TaskResult.ts';

export interface MasterClient extends grpc.Client {
  Enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  Enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  Enroll(argument: _flota_v1_EnrollRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  Enroll(argument: _flota_v1_EnrollRequest, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  enroll(argument: _flota_v1_EnrollRequest, callback: grpc.requestCallback<_flota_v1_EnrollReply__Output>): grpc.ClientUnaryCall;
  
  ReportResult(argument: _flota_v1_TaskResult, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  ReportResult(argument: _flota_v1_TaskResult, metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  ReportResult(argument: _flota_v1_TaskResult, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  ReportResult(argument: _flota_v1_TaskResult, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  reportResult(argument: _flota_v1_TaskResult, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  reportResult(argument: _flota_v1_TaskResult, metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  reportResult(argument: _flota_v1_TaskResult, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  reportResult(argument: _flota_v1_TaskResult, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientUnaryCall;
  
  StreamTask(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  StreamTask(metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  StreamTask(options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  StreamTask(callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  streamTask(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  streamTask(metadata: grpc.Metadata, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  streamTask(options: grpc.CallOptions, callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  streamTask(callback: grpc.requestCallback<_flota_v1_TaskAck__Output>): grpc.ClientWritableStream<_flota_v1_TaskChunk>;
  
}

export interface MasterHandlers extends grpc.UntypedServiceImplementation {
  Enroll: grpc.handleUnaryCall<_flota_v1_EnrollRequest__Output, _flota_v1_EnrollReply>;
  
  ReportResult: grpc.handleUnaryCall<_flota_v1_TaskResult__Output, _flota_v1_TaskAck>;
  
  StreamTask: grpc.handleClientStreamingCall<_flota_v1_TaskChunk__Output, _flota_v1_TaskAck>;
  
}

export interface MasterDefinition extends grpc.ServiceDefinition {
  Enroll: MethodDefinition<_flota_v1_EnrollRequest, _flota_v1_EnrollReply, _flota_v1_EnrollRequest__Output, _flota_v1_EnrollReply__Output>
  ReportResult: MethodDefinition<_flota_v1_TaskResult, _flota_v1_TaskAck, _flota_v1_TaskResult__Output, _flota_v1_TaskAck__Output>
  StreamTask: MethodDefinition<_flota_v1_TaskChunk, _flota_v1_TaskAck, _flota_v1_TaskChunk__Output, _flota_v1_TaskAck__Output>
}
