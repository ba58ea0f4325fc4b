/** Test doubles for the worker's peers: an aedes broker, a gRPC master, a log sink. */
import net from 'node:net';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { Aedes } from 'aedes';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  loadMasterPackage,
  type MasterAcks,
  type MasterHandlers,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type TaskAck,
  type TaskChunk__Output,
  type TaskResult__Output,
  type WorkerReports__Output,
} from '../../../proto/src/grpc.ts';
import {
  MAX_REPORTS_PER_MESSAGE,
  taskChunkMessageSchema,
  taskResultMessageSchema,
} from '../../../proto/src/schemas/grpc.ts';

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

export interface Caller {
  workerId: string;
  /** The `authorization` metadata the call carried. */
  authorization: string;
}

/** One task attempt as the test master saw it, over however many Connect streams it took. */
export interface ReceivedAttempt extends Caller {
  taskId: string;
  attempt: number;
  /** Chunks taken, in the order they came. */
  chunks: TaskChunk__Output[];
  /** Chunks that came after the attempt's chunks were refused on the same stream (not taken). */
  droppedChunks: number;
  /** Its latest result. */
  final?: TaskResult__Output;
}

/** One Connect call. */
export interface ReceivedConnection extends Caller {
  /** WorkerReports messages read. */
  messages: number;
  /** Every answer sent on it, in order. */
  acks: TaskAck[];
  /** False once the call is over, whoever ended it. */
  open: boolean;
}

/**
 * How the test master answers one report: it takes it, refuses it with a
 * reason (a result then gets `accepted: false`, a chunk a `final: false`
 * refusal), leaves it unanswered (the call stays open), or ends the whole
 * call with a status (a master going away while the report was in flight).
 */
export type Answer =
  | { accepted: true }
  | { accepted: false; reason: string }
  | { drop: true }
  | { fail: grpc.status; details?: string };

export const ACCEPT: Answer = { accepted: true };
export const DROP: Answer = { drop: true };
export const refuse = (reason: string): Answer => ({ accepted: false, reason });
export const fail = (code: grpc.status, details = 'test master failed the call'): Answer => ({
  fail: code,
  details,
});

/** What a test changes in the test master; every hook is optional (by default it takes everything). */
export interface MasterBehaviour {
  /** Checked at the call's start, as the auth interceptor does: a status here ends the call unread. */
  connect?(caller: Caller): { code: grpc.status; details: string } | undefined;
  /** `delivery`: how often this attempt's result has arrived, this one included (1 = first). */
  result?(result: TaskResult__Output, delivery: number): Answer | Promise<Answer>;
  chunk?(chunk: TaskChunk__Output): Answer;
}

export interface TestMaster {
  address: string;
  /** What the master does with the next calls and reports; tests may replace it at any time. */
  behaviour: MasterBehaviour;
  /** Every Connect call, refused ones included, in the order they came. */
  connections: ReceivedConnection[];
  /** Every task attempt that sent a chunk or a result, in the order they first came. */
  attempts: ReceivedAttempt[];
  /** Every result that arrived, resends included, in order. */
  deliveries: Array<Caller & { result: TaskResult__Output }>;
  /** Enroll calls: the worker id asked for and the `authorization` they carried. */
  enrollments: Array<{ workerId: string; authorization: string }>;
  /** The latest result of every attempt that sent one. */
  results(): TaskResult__Output[];
  /** Ends every open Connect call with `code` (the master's side of a broken stream). */
  cut(code?: grpc.status): void;
  close(): Promise<void>;
}

const metadataText = (metadata: grpc.Metadata, key: string) => String(metadata.get(key)[0] ?? '');

/** The credential this test master hands out on Enroll. */
export const enrolledCredential = (workerId: string) => `enrolled-${workerId}`;

type ConnectCall = grpc.ServerDuplexStream<WorkerReports__Output, MasterAcks>;

/**
 * A gRPC master on `port` (a free one when 0), over TLS when `credentials`
 * is given. It takes any credential (it records what each call carried)
 * unless `behaviour.connect` refuses it; its Enroll answers
 * enrolledCredential(id). Its Connect answers as the real master's
 * (master/src/grpc/report-stream.ts): every result with `final: true`, a
 * refused chunk with `final: false` (that attempt's later chunks on the same
 * stream are dropped), several answers per message; a malformed result gets
 * `bad_request: ...`, a malformed chunk is dropped, an oversized message ends
 * the call with INVALID_ARGUMENT.
 */
export async function startMaster(
  port = 0,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<TestMaster> {
  const { proto } = loadMasterPackage();
  const connections: ReceivedConnection[] = [];
  const attempts: ReceivedAttempt[] = [];
  const deliveries: TestMaster['deliveries'] = [];
  const enrollments: TestMaster['enrollments'] = [];
  /** The open Connect calls, each with what ends it with a status. */
  const live = new Map<ConnectCall, (code: grpc.status, details: string) => void>();
  const master = { behaviour: {} as MasterBehaviour };

  const attemptOf = (caller: Caller, ref: { taskId: string; attempt: number }) => {
    let entry = attempts.find((a) => a.taskId === ref.taskId && a.attempt === ref.attempt);
    if (!entry) {
      entry = { ...caller, taskId: ref.taskId, attempt: ref.attempt, chunks: [], droppedChunks: 0 };
      attempts.push(entry);
    }
    // The latest call's credential counts (a worker that enrolled again, say).
    entry.workerId = caller.workerId;
    entry.authorization = caller.authorization;
    return entry;
  };

  const serveConnect = (call: ConnectCall) => {
    const connection: ReceivedConnection = {
      workerId: metadataText(call.metadata, METADATA_WORKER_ID),
      authorization: metadataText(call.metadata, METADATA_AUTHORIZATION),
      messages: 0,
      acks: [],
      open: true,
    };
    const caller: Caller = {
      workerId: connection.workerId,
      authorization: connection.authorization,
    };
    connections.push(connection);
    const over = () => {
      connection.open = false;
      live.delete(call);
    };
    const end = (code: grpc.status, details: string) => {
      if (!connection.open) return;
      over();
      // grpc-js ends a server stream with the status of an 'error' it emits.
      call.emit('error', { code, details });
    };
    call.on('error', over);
    call.on('cancelled', over);
    call.on('close', over);
    call.on('finish', over);

    const refusal = master.behaviour.connect?.(caller);
    if (refusal) return end(refusal.code, refusal.details);
    live.set(call, end);

    let outgoing: TaskAck[] = [];
    let flushQueued = false;
    let pending = 0;
    let halfClosed = false;
    /** Attempts whose chunks were refused on this stream. */
    const refused = new Set<string>();

    const flush = () => {
      flushQueued = false;
      if (!connection.open || outgoing.length === 0) return;
      const acks = outgoing;
      outgoing = [];
      call.write({ acks });
    };
    const answer = (ack: TaskAck) => {
      if (!connection.open) return;
      connection.acks.push(ack);
      outgoing.push(ack);
      if (flushQueued) return;
      flushQueued = true;
      setImmediate(flush);
    };
    const finishIfDone = () => {
      if (!halfClosed || pending > 0 || !connection.open) return;
      flush();
      over();
      call.end();
    };

    const onChunk = (chunk: TaskChunk__Output) => {
      if (!taskChunkMessageSchema.safeParse(chunk).success) return;
      const entry = attemptOf(caller, chunk);
      const key = `${chunk.taskId}#${chunk.attempt}`;
      if (refused.has(key)) {
        entry.droppedChunks += 1;
        return;
      }
      const verdict = master.behaviour.chunk?.(chunk) ?? ACCEPT;
      if ('fail' in verdict) return end(verdict.fail, verdict.details ?? '');
      if ('drop' in verdict) return;
      if (verdict.accepted) {
        entry.chunks.push(chunk);
        return;
      }
      refused.add(key);
      const ref = { taskId: chunk.taskId, attempt: chunk.attempt };
      answer({ ...ref, accepted: false, reason: verdict.reason, final: false });
    };

    const onResult = (result: TaskResult__Output) => {
      const ref = { taskId: String(result.taskId ?? ''), attempt: Number(result.attempt) || 0 };
      const parsed = taskResultMessageSchema.safeParse(result);
      if (!parsed.success) {
        const why = formatZodError(parsed.error);
        return answer({ ...ref, accepted: false, reason: `bad_request: ${why}`, final: true });
      }
      deliveries.push({ ...caller, result });
      attemptOf(caller, ref).final = result;
      const delivery = deliveries.filter(
        (d) => d.result.taskId === ref.taskId && d.result.attempt === ref.attempt,
      ).length;
      pending += 1;
      void Promise.resolve(master.behaviour.result?.(result, delivery) ?? ACCEPT)
        .then((verdict) => {
          if ('fail' in verdict) return end(verdict.fail, verdict.details ?? '');
          if ('drop' in verdict) return;
          answer({
            ...ref,
            accepted: verdict.accepted,
            reason: verdict.accepted ? '' : verdict.reason,
            final: true,
          });
        })
        .finally(() => {
          pending -= 1;
          finishIfDone();
        });
    };

    call.on('data', (message: WorkerReports__Output) => {
      if (!connection.open) return;
      connection.messages += 1;
      const reports = message.reports ?? [];
      if (reports.length > MAX_REPORTS_PER_MESSAGE) {
        return end(
          grpc.status.INVALID_ARGUMENT,
          `at most ${MAX_REPORTS_PER_MESSAGE} reports per message`,
        );
      }
      for (const report of reports) {
        if (!connection.open) return;
        if (report.chunk) onChunk(report.chunk);
        else if (report.result) onResult(report.result);
      }
    });
    // The worker is done: answer what is still pending, then end our side.
    call.on('end', () => {
      halfClosed = true;
      finishIfDone();
    });
  };

  const handlers: MasterHandlers = {
    Connect: serveConnect,
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
  const cut = (code: grpc.status = grpc.status.UNAVAILABLE) => {
    for (const end of [...live.values()]) end(code, 'test master cut the stream');
  };
  return Object.assign(master, {
    address: `127.0.0.1:${bound}`,
    connections,
    attempts,
    deliveries,
    enrollments,
    results: () => attempts.flatMap((a) => (a.final ? [a.final] : [])),
    cut,
    close: () =>
      new Promise<void>((resolve) => {
        // Connect calls never end by themselves: end them first, as the real master does.
        for (const end of [...live.values()]) end(grpc.status.UNAVAILABLE, 'test master stopping');
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  });
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
