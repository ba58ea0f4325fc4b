/** Loads the gRPC contract from `proto/flota/v1/master.proto`. */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/master.ts';

export const MASTER_PROTO_PATH = fileURLToPath(
  new URL('../flota/v1/master.proto', import.meta.url),
);
export const MASTER_SERVICE_NAME = 'flota.v1.Master';

/** Metadata keys every worker call carries. */
export const METADATA_WORKER_ID = 'x-flota-worker-id';
export const METADATA_AUTHORIZATION = 'authorization';
/** `authorization: Bearer <worker credential or join token>`. */
export const BEARER_SCHEME = 'Bearer';

/** The `authorization` value carrying `credential`. */
export const bearer = (credential: string) => `${BEARER_SCHEME} ${credential}`;

/** The credential in an `authorization` value, or undefined when it is not `Bearer <credential>`. */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export function loadMasterPackage(): {
  proto: ProtoGrpcType;
  definition: protoLoader.PackageDefinition;
} {
  const definition = protoLoader.loadSync(MASTER_PROTO_PATH, PROTO_LOADER_OPTIONS);
  const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  return { proto, definition };
}

export type { EnrollReply, EnrollReply__Output } from '../generated/flota/v1/EnrollReply.ts';
export type { EnrollRequest, EnrollRequest__Output } from '../generated/flota/v1/EnrollRequest.ts';
export type {
  MasterClient,
  MasterDefinition,
  MasterHandlers,
} from '../generated/flota/v1/Master.ts';
export type { MasterAcks, MasterAcks__Output } from '../generated/flota/v1/MasterAcks.ts';
export type { TaskAck, TaskAck__Output } from '../generated/flota/v1/TaskAck.ts';
export type { TaskChunk, TaskChunk__Output } from '../generated/flota/v1/TaskChunk.ts';
export type { TaskResult, TaskResult__Output } from '../generated/flota/v1/TaskResult.ts';
export type { WorkerReport, WorkerReport__Output } from '../generated/flota/v1/WorkerReport.ts';
export type {
  WorkerReports,
  WorkerReports__Output,
} from '../generated/flota/v1/WorkerReports.ts';
