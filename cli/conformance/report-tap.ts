/**
 * A gRPC relay between the worker under test and the kit's master: the
 * worker's MASTER_GRPC points here, every `Connect` stream is forwarded to
 * the master whole (metadata, reports, acks, the closing status), and each
 * chunk and result is recorded in the order the worker sent it. So the
 * checks see the reports as they were on the wire, before the master
 * deduplicates or heals anything.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  loadMasterPackage,
  type MasterClient,
  type MasterHandlers,
  type TaskChunk__Output,
  type TaskResult__Output,
  type WorkerReports__Output,
} from '../../proto/src/grpc.ts';

export type TappedReport =
  | { at: number; kind: 'chunk'; chunk: TaskChunk__Output }
  | { at: number; kind: 'result'; result: TaskResult__Output };

export class ReportTap {
  readonly reports: TappedReport[] = [];
  /** Where the worker dials (MASTER_GRPC = 127.0.0.1:port). */
  port = 0;

  private constructor(private readonly server: grpc.Server) {}

  /** Listens on a free loopback port and forwards to `masterAddress`; `onReport` hears each report. */
  static async start(masterAddress: string, log: Logger, onReport: () => void): Promise<ReportTap> {
    const { proto } = loadMasterPackage();
    const upstream = new proto.flota.v1.Master(masterAddress, grpc.credentials.createInsecure());
    const server = new grpc.Server();
    const tap = new ReportTap(server);
    server.addService(proto.flota.v1.Master.service, tap.handlers(upstream, log, onReport));
    tap.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    return tap;
  }

  private handlers(upstream: MasterClient, log: Logger, onReport: () => void): MasterHandlers {
    const record = (message: WorkerReports__Output) => {
      for (const report of message.reports) {
        const at = Date.now();
        if (report.chunk) this.reports.push({ at, kind: 'chunk', chunk: report.chunk });
        if (report.result) this.reports.push({ at, kind: 'result', result: report.result });
      }
      onReport();
    };
    return {
      Connect(call) {
        const onward = upstream.Connect(call.metadata.clone());
        call.on('data', (message: WorkerReports__Output) => {
          record(message);
          onward.write(message);
        });
        call.on('end', () => onward.end());
        call.on('cancelled', () => onward.cancel());
        call.on('error', () => onward.cancel());
        onward.on('data', (acks) => call.write(acks));
        onward.on('end', () => call.end());
        onward.on('error', (err: grpc.ServiceError) => {
          log.debug({ code: err.code, details: err.details }, 'relayed stream ended with an error');
          call.emit('error', { code: err.code, details: err.details, metadata: err.metadata });
        });
      },
      Enroll(call, callback) {
        upstream.Enroll(call.request, call.metadata.clone(), (err, reply) =>
          err ? callback(err) : callback(null, reply),
        );
      },
    };
  }

  chunksOf(taskId: string): Array<{ at: number; chunk: TaskChunk__Output }> {
    return this.reports.flatMap((r) =>
      r.kind === 'chunk' && r.chunk.taskId === taskId ? [{ at: r.at, chunk: r.chunk }] : [],
    );
  }

  resultsOf(taskId: string): Array<{ at: number; result: TaskResult__Output }> {
    return this.reports.flatMap((r) =>
      r.kind === 'result' && r.result.taskId === taskId ? [{ at: r.at, result: r.result }] : [],
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      // Streams still open (a killed worker's) would hold tryShutdown: end them.
      setTimeout(() => this.server.forceShutdown(), 1_000).unref();
    });
  }
}
