/**
 * One worker's Connect stream, open while the worker runs: it carries the
 * chunks and final results of all the worker's task attempts, several per
 * message, and takes back the master's answers, batched the same way. No
 * HTTP/2 stream is set up per task.
 *
 * Order: reports are handled in the order they arrive; while an attempt this
 * master does not know is being adopted (a store look-up), the reports after
 * it wait, so an attempt's chunks never overtake each other or its result.
 * Results are committed concurrently and answered as each commit settles.
 *
 * Bounds: a message with more than MAX_REPORTS_PER_MESSAGE reports ends the
 * stream (INVALID_ARGUMENT); with MAX_PENDING_RESULTS commits in flight the
 * stream stops reading until half of them are answered. A report that fails
 * its schema is answered `bad_request` (a result) or dropped (a chunk) and
 * logged; the stream goes on.
 */
import * as grpc from '@grpc/grpc-js';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import type {
  MasterAcks,
  TaskAck,
  TaskChunk__Output,
  TaskResult__Output,
  WorkerReport__Output,
  WorkerReports__Output,
} from '../../../proto/src/grpc.ts';
import {
  MAX_ACK_REASON_CHARS,
  MAX_REPORTS_PER_MESSAGE,
  MAX_TASK_ID_CHARS,
  taskChunkMessageSchema,
  taskResultMessageSchema,
} from '../../../proto/src/schemas/grpc.ts';
import type { ResultHandler, Verdict } from '../results/result-handler.ts';

/** Result commits in flight on one stream before it stops reading. */
export const MAX_PENDING_RESULTS = 512;
/** Attempts whose chunks were refused, remembered per stream (their later chunks are dropped). */
const MAX_REFUSED_ATTEMPTS = 1_024;

export type ReportCall = grpc.ServerDuplexStream<WorkerReports__Output, MasterAcks>;

export interface ReportStreamDeps {
  workerId: string;
  results: Pick<ResultHandler, 'chunk' | 'final'>;
  log: Logger;
}

const attemptKey = (taskId: string, attempt: number) => `${taskId}#${attempt}`;

export interface ReportStream {
  /** Ends the stream from the master's side (shutdown): answers still pending are dropped. */
  end(): void;
  /** Settles once the stream is over, whoever ended it. */
  readonly done: Promise<void>;
}

/** Serves one Connect call until it ends. */
export function serveReportStream(call: ReportCall, deps: ReportStreamDeps): ReportStream {
  const { workerId, results, log } = deps;
  let open = true;
  const outgoing: TaskAck[] = [];
  let flushQueued = false;
  /** Reports wait behind an adoption in progress, so their order is kept. */
  let backlog: Promise<void> | undefined;
  let pending = 0;
  let paused = false;
  let ended = false;
  const refused = new LRUCache<string, true>({ max: MAX_REFUSED_ATTEMPTS });

  const flush = () => {
    flushQueued = false;
    if (!open) return;
    // At most as many answers per message as reports per message: each answer is bounded
    // (task id, reason), so a message stays far below any receive limit.
    while (outgoing.length > 0) call.write({ acks: outgoing.splice(0, MAX_REPORTS_PER_MESSAGE) });
  };
  /** Answers go out together, once per turn of the event loop. */
  const answer = (ack: TaskAck) => {
    outgoing.push(ack);
    if (flushQueued) return;
    flushQueued = true;
    setImmediate(flush);
  };
  const finishIfDone = () => {
    if (ended && pending === 0 && !backlog && open) {
      flush();
      open = false;
      call.end();
    }
  };

  const onChunk = (chunk: TaskChunk__Output): Promise<void> | undefined => {
    const parsed = taskChunkMessageSchema.safeParse(chunk);
    if (!parsed.success) {
      log.warn({ workerId, reason: formatZodError(parsed.error) }, 'chunk dropped: invalid');
      return;
    }
    // Refusals are rare: a stream without any looks nothing up per chunk.
    if (refused.size > 0 && refused.has(attemptKey(chunk.taskId, chunk.attempt))) return;
    const verdict = results.chunk(workerId, chunk);
    if (verdict instanceof Promise) return verdict.then((v) => refuseChunk(chunk, v));
    if (!verdict.accepted) refuseChunk(chunk, verdict);
  };
  /** A refused chunk: answered once, and the attempt's later chunks are dropped. */
  const refuseChunk = (chunk: TaskChunk__Output, verdict: Verdict) => {
    if (verdict.accepted) return;
    refused.set(attemptKey(chunk.taskId, chunk.attempt), true);
    answer({
      taskId: chunk.taskId,
      attempt: chunk.attempt,
      accepted: false,
      reason: verdict.reason,
      final: false,
    });
  };

  const onResult = (result: TaskResult__Output): void => {
    // Echoed in the answer: a task id or reason no longer than an answer may carry.
    const ref = {
      taskId: String(result.taskId ?? '').slice(0, MAX_TASK_ID_CHARS),
      attempt: Number(result.attempt) || 0,
    };
    const parsed = taskResultMessageSchema.safeParse(result);
    if (!parsed.success) {
      const why = formatZodError(parsed.error);
      log.warn({ workerId, ...ref, reason: why }, 'result refused: invalid');
      const reason = `bad_request: ${why}`.slice(0, MAX_ACK_REASON_CHARS);
      answer({ ...ref, accepted: false, reason, final: true });
      return;
    }
    pending += 1;
    if (pending >= MAX_PENDING_RESULTS && !paused) {
      paused = true;
      call.pause();
    }
    results
      .final(workerId, result)
      .then(
        (verdict) =>
          answer({
            ...ref,
            accepted: verdict.accepted,
            reason: verdict.accepted ? '' : verdict.reason,
            final: true,
          }),
        (err: unknown) => {
          log.error({ err, workerId, ...ref }, 'result handling failed');
          answer({ ...ref, accepted: false, reason: 'internal', final: true });
        },
      )
      .finally(() => {
        pending -= 1;
        if (paused && pending <= MAX_PENDING_RESULTS / 2) {
          paused = false;
          call.resume();
        }
        finishIfDone();
      });
  };

  /** Handles one report; a promise while the master adopts an attempt it did not know. */
  const handle = (report: WorkerReport__Output): Promise<void> | undefined => {
    try {
      // The oneof's member on the wire decides (the last one sent), not whichever field is set.
      if (report.report === 'chunk' && report.chunk) {
        return onChunk(report.chunk)?.catch((err) => fail(err));
      }
      if (report.report === 'result' && report.result) onResult(report.result);
    } catch (err) {
      fail(err);
    }
  };
  const fail = (err: unknown) => {
    // A bug must not take the master down: the report is logged and the stream goes on.
    log.error({ err, workerId }, 'report handling failed');
  };

  const take = (message: WorkerReports__Output) => {
    const reports = message.reports ?? [];
    if (reports.length > MAX_REPORTS_PER_MESSAGE) {
      log.warn({ workerId, reports: reports.length }, 'report stream ended: message too large');
      open = false;
      // grpc-js ends a server stream with the status of an 'error' it emits.
      call.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: `at most ${MAX_REPORTS_PER_MESSAGE} reports per message`,
      });
      return;
    }
    for (const report of reports) {
      const pendingTurn = backlog ? backlog.then(() => handle(report)) : handle(report);
      if (!pendingTurn) continue;
      const turn = pendingTurn.then(() => {
        if (backlog === turn) backlog = undefined;
        finishIfDone();
      });
      backlog = turn;
    }
  };

  const done = new Promise<void>((resolve) => {
    const over = () => {
      open = false;
      resolve();
    };
    call.on('data', (message: WorkerReports__Output) => {
      if (open) take(message);
    });
    // The worker is done (it stops): answer what is still pending, then end our side.
    call.on('end', () => {
      ended = true;
      finishIfDone();
    });
    call.on('error', (err) => {
      log.debug({ workerId, err: err.message }, 'report stream broke');
      over();
    });
    call.on('finish', over);
    call.on('close', over);
    call.on('cancelled', () => {
      // Whatever arrived stays (chunks shown, results committed); the worker resends the rest.
      if (open && !ended) log.warn({ workerId, pending }, 'report stream cut');
      over();
    });
  });
  return {
    done,
    end() {
      if (!open) return;
      open = false;
      call.end();
    },
  };
}
