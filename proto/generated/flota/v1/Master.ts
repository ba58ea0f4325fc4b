// Original file: proto/flota/v1/master.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { TaskAck as _flota_v1_TaskAck, TaskAck__Output as _flota_v1_TaskAck__Output } from '../../flota/v1/TaskAck.ts';
import type { TaskChunk as _flota_v1_TaskChunk, TaskChunk__Output as _flota_v1_TaskChunk__Output } from '../../flota/v1/TaskChunk.ts';
import type { TaskResult as _flota_v1_TaskResult, TaskResult__Output as _flota_v1_TaskResult__Output } from '../../flota/v1/TaskResult.ts';

export interface MasterClient extends grpc.Client {
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
  ReportResult: grpc.handleUnaryCall<_flota_v1_TaskResult__Output, _flota_v1_TaskAck>;
  
  StreamTask: grpc.handleClientStreamingCall<_flota_v1_TaskChunk__Output, _flota_v1_TaskAck>;
  
}

export interface MasterDefinition extends grpc.ServiceDefinition {
  ReportResult: MethodDefinition<_flota_v1_TaskResult, _flota_v1_TaskAck, _flota_v1_TaskResult__Output, _flota_v1_TaskAck__Output>
  StreamTask: MethodDefinition<_flota_v1_TaskChunk, _flota_v1_TaskAck, _flota_v1_TaskChunk__Output, _flota_v1_TaskAck__Output>
}
