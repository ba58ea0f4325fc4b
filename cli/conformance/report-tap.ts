/**
 * A gRPC relay between the worker under test and the kit's master: the
 * worker's MASTER_GRPC points here, every `Connect` stream is forwarded to
 * the master whole (metadata, reports, acks, the closing status), and each
 * chunk and result is recorded in the order the worker sent it. So the
 * checks see the reports as they were on the wire, before the master
 * deduplicates or heals anything. A check may ask it to mistreat one
 * task's first result as a failing master would (`interfere`).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  loadMasterPackage,
  type MasterAcks__Output,
  type MasterClient,
  type MasterHandlers,
  type TaskAck,
  type TaskAck__Output,
  type TaskChunk__Output,
  type TaskResult__Output,
  type WorkerReport__Output,
  type WorkerReports__Output,
} from '../../proto/src/grpc.ts';

export type TappedReport =
  | { at: number; kind: 'chunk'; chunk: TaskChunk__Output }
  | { at: number; kind: 'result'; result: TaskResult__Output };

/**
 * What the relay does to one task's first result (docs/PROTOCOL.md § gRPC ›
 * Deadlines and retries):
 * - `store-unavailable`: answers it `store_unavailable` itself and does not
 *   forward it, as a master whose store refused the commit;
 * - `ack-lost`: forwards it, and once the master has answered, drops the
 *   answer and breaks the worker's stream, as a master that stopped right
 *   after it committed.
 */
export type ResultFault = 'store-unavailable' | 'ack-lost';

/** Lets the relay's upstream channel find a restarted master quickly (grpc-js backs off up to 120 s). */
const UPSTREAM_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

const attemptKey = (a: { taskId: string; attempt: number }) => `${a.taskId}#${a.attempt}`;

export class ReportTap {
  readonly reports: TappedReport[] = [];
  /** Task id → the fault its next result meets. */
  private readonly faults = new Map<string, ResultFault>();
  /** Results forwarded under `ack-lost`, by `taskId#attempt`: their answer is dropped. */
  private readonly losing = new Set<string>();
  /** Every answer the master sent back, as it sent it. */
  readonly acks: Array<{ at: number; ack: TaskAck__Output }> = [];
  /** When each fault was applied, in order. */
  readonly interfered: Array<{ at: number; taskId: string; fault: ResultFault }> = [];
  /** Where the worker dials (MASTER_GRPC = host:port). */
  port = 0;

  private constructor(private readonly server: grpc.Server) {}

  /** Listens on `listen` (`host:0`: a free port) and forwards to `masterAddress`; `onReport` hears each report. */
  static async start(
    listen: string,
    masterAddress: string,
    log: Logger,
    onReport: () => void,
  ): Promise<ReportTap> {
    const { proto } = loadMasterPackage();
    const upstream = new proto.flota.v1.Master(
      masterAddress,
      grpc.credentials.createInsecure(),
      UPSTREAM_OPTIONS,
    );
    const server = new grpc.Server();
    const tap = new ReportTap(server);
    server.addService(proto.flota.v1.Master.service, tap.handlers(upstream, log, onReport));
    tap.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      ),
    );
    return tap;
  }

  /** The next result for `taskId` meets `fault`; the relay is honest again after it. */
  interfere(taskId: string, fault: ResultFault): void {
    this.faults.set(taskId, fault);
  }

  /** The reports to forward; a result under `store-unavailable` is answered here instead. */
  private intercept(reports: WorkerReport__Output[], answer: (ack: TaskAck) => void) {
    return reports.filter((report) => {
      const result = report.result;
      const fault = result ? this.faults.get(result.taskId) : undefined;
      if (!result || !fault) return true;
      this.faults.delete(result.taskId);
      this.interfered.push({ at: Date.now(), taskId: result.taskId, fault });
      if (fault === 'ack-lost') {
        this.losing.add(attemptKey(result));
        return true;
      }
      const { taskId, attempt } = result;
      answer({ accepted: false, reason: 'store_unavailable', taskId, attempt, final: true });
      return false;
    });
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
    const tap = this;
    return {
      Connect(call) {
        const onward = upstream.Connect(call.metadata.clone());
        let broken = false;
        const breakStream = (status: Partial<grpc.StatusObject>) => {
          if (broken) return;
          broken = true;
          call.emit('error', status);
          onward.cancel();
        };
        call.on('data', (message: WorkerReports__Output) => {
          record(message);
          const answers: TaskAck[] = [];
          const reports = tap.intercept(message.reports, (ack) => answers.push(ack));
          if (answers.length > 0) call.write({ acks: answers });
          if (reports.length > 0) onward.write({ reports });
        });
        call.on('end', () => onward.end());
        call.on('cancelled', () => onward.cancel());
        call.on('error', () => onward.cancel());
        onward.on('data', (message: MasterAcks__Output) => {
          if (broken) return;
          const at = Date.now();
          for (const ack of message.acks) tap.acks.push({ at, ack });
          const lost = message.acks.filter((a) => a.final && tap.losing.delete(attemptKey(a)));
          const acks = message.acks.filter((a) => !lost.includes(a));
          if (acks.length > 0) call.write({ acks });
          if (lost.length > 0) {
            breakStream({
              code: grpc.status.UNAVAILABLE,
              details: 'the conformance kit dropped the answer to a result and broke the stream',
            });
          }
        });
        onward.on('end', () => {
          if (!broken) call.end();
        });
        onward.on('error', (err: grpc.ServiceError) => {
          log.debug({ code: err.code, details: err.details }, 'relayed stream ended with an error');
          breakStream({ code: err.code, details: err.details, metadata: err.metadata });
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

  /** Whether the master refused a chunk of the attempt (a `TaskAck` with `final: false`). */
  chunkRefused(taskId: string, attempt: number): boolean {
    return this.acks.some(
      ({ ack }) => ack.taskId === taskId && ack.attempt === attempt && !ack.final,
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
