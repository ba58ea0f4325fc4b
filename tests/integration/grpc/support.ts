/** The master's gRPC server alone, on loopback, with a real credential authority and a recording result handler. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../../common/logger.ts';
import { type MasterGrpcServer, startGrpcServer } from '../../../master/src/grpc/server.ts';
import type { ResultHandler, Verdict } from '../../../master/src/results/result-handler.ts';
import type { TlsMaterial } from '../../../master/src/security/tls.ts';
import { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import {
  bearer,
  type EnrollReply__Output,
  loadMasterPackage,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type WorkerReport,
} from '../../../proto/src/grpc.ts';
import { type ConnectStream, type Outcome, openConnect } from '../../helpers/report-stream.ts';
import { LogSink } from '../worker/support.ts';

export interface GrpcRig {
  server: MasterGrpcServer;
  address: string;
  credentials: WorkerCredentials;
  /** Worker ids the enroll hook reports online. */
  online: Set<string>;
  /** What reached the result handler: only calls the interceptor let through. */
  handled: Array<{ workerId: string; taskId: string; kind: 'chunk' | 'final' }>;
  logs: LogSink;
  close(): Promise<void>;
}

/** Another installation's authority: its credentials and join tokens are well formed but not ours. */
export async function foreignCredentials(): Promise<WorkerCredentials> {
  const dataDir = await mkdtemp(join(tmpdir(), 'flota-foreign-'));
  return WorkerCredentials.open({ dataDir, secret: 'f'.repeat(64) });
}

export async function startGrpcRig(tls?: TlsMaterial): Promise<GrpcRig> {
  const dataDir = await mkdtemp(join(tmpdir(), 'flota-grpc-auth-'));
  const credentials = await WorkerCredentials.open({ dataDir, secret: 's'.repeat(64) });
  const logs = new LogSink();
  const log = createLogger({ source: 'master', level: 'debug', destination: logs }).logger;
  const handled: GrpcRig['handled'] = [];
  const online = new Set<string>();
  const accepted: Verdict = { accepted: true };
  const results = {
    chunk(workerId: string, chunk: { taskId: string }) {
      handled.push({ workerId, taskId: chunk.taskId, kind: 'chunk' });
      return accepted;
    },
    async final(workerId: string, result: { taskId: string }) {
      handled.push({ workerId, taskId: result.taskId, kind: 'final' });
      return accepted;
    },
  } as unknown as ResultHandler;
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    results,
    log,
    credentials,
    tls,
    enroll: {
      issue: async (workerId) => credentials.issue(workerId),
      isOnline: (workerId) => online.has(workerId),
    },
  });
  return {
    server,
    address: `127.0.0.1:${server.port}`,
    credentials,
    online,
    handled,
    logs,
    close: async () => {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function rawClient(
  address: string,
  channel: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): MasterClient {
  const { proto } = loadMasterPackage();
  return new proto.flota.v1.Master(address, channel);
}

export function workerMetadata(workerId?: string, token?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (workerId) md.set(METADATA_WORKER_ID, workerId);
  if (token) md.set(METADATA_AUTHORIZATION, bearer(token));
  return md;
}

export {
  answerTo,
  type ConnectStream,
  type Outcome,
  openConnect,
  reportOnce,
  reportResult,
} from '../../helpers/report-stream.ts';

const deadline = () => ({ deadline: Date.now() + 5_000 });

export function enroll(
  client: MasterClient,
  workerId: string,
  joinToken?: string,
): Promise<Outcome<EnrollReply__Output>> {
  return new Promise((resolve) =>
    client.Enroll({ workerId }, workerMetadata(undefined, joinToken), deadline(), (error, reply) =>
      resolve(error ? { error } : { reply }),
    ),
  );
}

/**
 * Opens a Connect stream and writes `reports` in one message; read the
 * answers and how the call ended on the returned stream.
 */
export function openStream(
  client: MasterClient,
  metadata: grpc.Metadata,
  reports: WorkerReport[],
): ConnectStream {
  const stream = openConnect(client, metadata);
  if (reports.length > 0) stream.write(reports);
  return stream;
}
