/**
 * Results go to the master over gRPC: one long-lived client, one StreamTask
 * call per task attempt (chunks, then the final result). If the stream breaks
 * before the master's ack, the result is sent again with ReportResult, a few
 * times with backoff, bounded by the attempt's deadline.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/logger.ts';
import { backoffDelay } from '../../common/retry.ts';
import {
  bearer,
  loadMasterPackage,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type TaskAck__Output,
  type TaskChunk,
  type TaskResult,
} from '../../proto/src/grpc.ts';
import type { ResultRejectReason } from '../../proto/src/schemas/codes.ts';

/**
 * A result may be reported a little after the task's own deadline: a task
 * that timed out must still be able to say so.
 */
export const REPORT_GRACE_MS = 5_000;
/**
 * Backoff between ReportResult tries: the cap doubles from 200 ms to 2 s and
 * stays there until the attempt's deadline (plus grace) passes, so a master
 * that restarts in the meantime still gets the result.
 */
const RETRY_BACKOFF = { baseMs: 200, maxMs: 2_000 };

/** The master kept the lease but could not commit (its store is down): send again later. */
const RESEND_REASON: ResultRejectReason = 'store_unavailable';
const shouldResend = (ack: TaskAck__Output | undefined) =>
  ack?.accepted === false && ack.reason === RESEND_REASON;
/**
 * Refusals no resend can change: the master does not accept this worker's
 * credential (revoked, another installation's) or the call itself.
 */
const REFUSED = new Set<grpc.status>([
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.UNIMPLEMENTED,
]);
const refused = (outcome: CallOutcome) =>
  outcome.error !== undefined && REFUSED.has(outcome.error.code);
/** The master is unreachable (e.g. restarting) or asked for a resend: try again. */
const worthRetry = (outcome: CallOutcome) =>
  (!outcome.ack && !refused(outcome)) || shouldResend(outcome.ack);

export interface AttemptRef {
  taskId: string;
  attempt: number;
  lease: string;
  deadline: number;
}

export interface TaskStream {
  /** Sends one text chunk; dropped silently once the stream has failed. */
  write(text: string): void;
  /** Sends the final result and ends the stream; falls back to ReportResult. */
  finish(result: TaskResult): Promise<TaskAck__Output | undefined>;
  /** Chunks written so far. */
  readonly chunks: number;
}

export interface ResultReporter {
  openStream(ref: AttemptRef): TaskStream;
  /** Unary ReportResult with retries; undefined when the master could not be reached. */
  report(result: TaskResult, deadline: number): Promise<TaskAck__Output | undefined>;
  close(): void;
}

export interface GrpcLinkOptions {
  address: string;
  workerId: string;
  /** This worker's own credential, sent as `authorization: Bearer <credential>` on every call. */
  credential: string;
  /** Plaintext or TLS (grpcChannelCredentials). */
  channelCredentials: grpc.ChannelCredentials;
  log: Logger;
}

interface CallOutcome {
  error?: grpc.ServiceError;
  ack?: TaskAck__Output;
}

/**
 * grpc-js backs off reconnects up to 120 s by default. A worker whose network
 * came back after a long cut is online again over MQTT within a second and
 * gets work, but every report would fail at once ("No connection
 * established") until that backoff ran out. Capped at 2 s, a report waits at
 * most that long; a dial every 2 s to an absent master costs nothing.
 */
export const GRPC_CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 2_000,
} as const;

export function createResultReporter(options: GrpcLinkOptions): ResultReporter {
  const { proto } = loadMasterPackage();
  const client: MasterClient = new proto.flota.v1.Master(
    options.address,
    options.channelCredentials,
    GRPC_CHANNEL_OPTIONS,
  );
  const log = options.log.child({ component: 'grpc-link' });

  const metadata = () => {
    const md = new grpc.Metadata();
    md.set(METADATA_WORKER_ID, options.workerId);
    md.set(METADATA_AUTHORIZATION, bearer(options.credential));
    return md;
  };
  const callDeadline = (deadline: number) =>
    new Date(Math.max(deadline, Date.now()) + REPORT_GRACE_MS);
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  const reportOnce = (result: TaskResult, deadline: number) =>
    new Promise<CallOutcome>((resolve) => {
      client.ReportResult(result, metadata(), { deadline: callDeadline(deadline) }, (error, ack) =>
        resolve(error ? { error } : { ack }),
      );
    });

  const report = async (result: TaskResult, deadline: number) => {
    const stopAt = deadline + REPORT_GRACE_MS;
    for (let attempt = 0; ; attempt += 1) {
      const outcome = await reportOnce(result, deadline);
      if (refused(outcome)) {
        // Loud: without a credential the master takes, no result of this worker counts.
        log.error(
          { taskId: result.taskId, attempt: result.attempt, err: outcome.error?.details },
          "the master refused this worker's result call: check WORKER_TOKEN",
        );
      }
      if (outcome.ack?.accepted || !worthRetry(outcome)) return outcome.ack;
      const delay = backoffDelay(attempt, RETRY_BACKOFF);
      const ref = { taskId: result.taskId, attempt: result.attempt };
      if (Date.now() + delay >= stopAt) {
        log.warn(
          { ...ref, err: outcome.error?.message ?? outcome.ack?.reason },
          'result could not be delivered',
        );
        return outcome.ack;
      }
      log.debug({ ...ref, err: outcome.error?.message, delay }, 'ReportResult failed; retrying');
      await sleep(delay);
    }
  };

  const openStream = (ref: AttemptRef): TaskStream => {
    let seq = 0;
    let failed = false;
    let call: grpc.ClientWritableStream<TaskChunk> | undefined;
    let outcome: Promise<CallOutcome> | undefined;
    const base = { taskId: ref.taskId, attempt: ref.attempt, lease: ref.lease };

    const ensureCall = () => {
      if (call) return call;
      outcome = new Promise<CallOutcome>((resolve) => {
        call = client.StreamTask(
          metadata(),
          { deadline: callDeadline(ref.deadline) },
          (error, ack) => {
            if (error) failed = true;
            resolve(error ? { error } : { ack });
          },
        );
      });
      // Errors also arrive through the callback; this keeps them from being unhandled.
      call!.on('error', () => {
        failed = true;
      });
      return call!;
    };

    return {
      get chunks() {
        return seq;
      },
      write(text: string) {
        if (failed) return;
        ensureCall().write({ ...base, seq, text });
        seq += 1;
      },
      async finish(result: TaskResult) {
        const stream = ensureCall();
        if (!failed) {
          stream.write({ ...base, seq, text: '', final: result });
          stream.end();
        }
        const end = await outcome!;
        if (end.ack && !shouldResend(end.ack)) return end.ack;
        log.warn(
          { taskId: ref.taskId, attempt: ref.attempt, err: end.error?.message },
          'result stream failed; falling back to ReportResult',
        );
        return report(result, ref.deadline);
      },
    };
  };

  return { openStream, report, close: () => client.close() };
}
