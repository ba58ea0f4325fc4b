/** Test doubles for the worker's peers: an aedes broker, a gRPC master, a log sink. */
import net from 'node:net';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { Aedes } from 'aedes';
import {
  loadMasterPackage,
  type MasterHandlers,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type TaskChunk__Output,
  type TaskResult__Output,
} from '../../../proto/src/grpc.ts';

export interface TestBroker {
  broker: Aedes;
  url: string;
  close(): Promise<void>;
}

export async function startBroker(): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const server = net.createServer({ noDelay: true }, broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    broker,
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ReceivedStream {
  workerId: string;
  /** The `authorization` metadata the call carried. */
  authorization: string;
  chunks: TaskChunk__Output[];
  final?: TaskResult__Output;
}

export interface TestMaster {
  address: string;
  streams: ReceivedStream[];
  reports: Array<{ workerId: string; authorization: string; result: TaskResult__Output }>;
  /** Enroll calls: the worker id asked for and the `authorization` they carried. */
  enrollments: Array<{ workerId: string; authorization: string }>;
  /** Every final result, streamed or reported. */
  results(): TaskResult__Output[];
  close(): Promise<void>;
}

const metadataText = (metadata: grpc.Metadata, key: string) => String(metadata.get(key)[0] ?? '');

/** The credential this test master hands out on Enroll. */
export const enrolledCredential = (workerId: string) => `enrolled-${workerId}`;

/**
 * A gRPC master on `port` (a free one when 0), over TLS when `credentials`
 * is given. It takes any credential (it records what each call carried); its
 * Enroll answers enrolledCredential(id).
 */
export async function startMaster(
  port = 0,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<TestMaster> {
  const { proto } = loadMasterPackage();
  const streams: ReceivedStream[] = [];
  const reports: TestMaster['reports'] = [];
  const enrollments: TestMaster['enrollments'] = [];
  const handlers: MasterHandlers = {
    StreamTask(call, callback) {
      const entry: ReceivedStream = {
        workerId: metadataText(call.metadata, METADATA_WORKER_ID),
        authorization: metadataText(call.metadata, METADATA_AUTHORIZATION),
        chunks: [],
      };
      streams.push(entry);
      call.on('data', (chunk: TaskChunk__Output) => {
        if (chunk.final) entry.final = chunk.final;
        else entry.chunks.push(chunk);
      });
      call.on('end', () => callback(null, { accepted: true }));
    },
    ReportResult(call, callback) {
      reports.push({
        workerId: metadataText(call.metadata, METADATA_WORKER_ID),
        authorization: metadataText(call.metadata, METADATA_AUTHORIZATION),
        result: call.request,
      });
      return callback(null, { accepted: true });
    },
    Enroll(call, callback) {
      const workerId = call.request.workerId;
      enrollments.push({
        workerId,
        authorization: metadataText(call.metadata, METADATA_AUTHORIZATION),
      });
      return callback(null, { credential: enrolledCredential(workerId) });
    },
  };
  const server = new grpc.Server();
  server.addService(proto.flota.v1.Master.service, handlers);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, credentials, (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${bound}`,
    streams,
    reports,
    enrollments,
    results: () => [
      ...streams.flatMap((s) => (s.final ? [s.final] : [])),
      ...reports.map((r) => r.result),
    ],
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** Collects a logger's JSON lines. */
export class LogSink extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  }
  has(msg: string): boolean {
    return this.lines.some((line) => line.msg === msg);
  }
  count(msg: string): number {
    return this.lines.filter((line) => line.msg === msg).length;
  }
}
