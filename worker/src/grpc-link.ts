/**
 * Results go to the master over gRPC: one long-lived Connect stream per
 * worker carries the chunks and results of all its attempts, several per
 * message (what one turn of the event loop gathered), and brings back the
 * master's answers. A result the master has not answered when the stream
 * breaks is sent again on a new stream, with backoff, until the attempt's
 * deadline (plus a grace) has passed; one it could not store yet
 * (`store_unavailable`) is sent again the same way.
 *
 * The pieces of text an attempt streams within `coalesceMs` travel as one
 * chunk (chunk-coalescer.ts): joined text, one seq; an attempt's result takes
 * its held text along first.
 *
 * grpc-js puts no time limit on a dial (TCP connect, TLS, HTTP/2 settings),
 * and keepalive only watches a connection once it is up. A channel still
 * dialling DIAL_TIMEOUT_MS after results began to wait is replaced by a new
 * one, which looks the master's name up again (see DIAL_TIMEOUT_MS).
 */
import * as grpc from '@grpc/grpc-js';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../common/logger.ts';
import { backoffDelay } from '../../common/retry.ts';
import {
  bearer,
  loadMasterPackage,
  type MasterAcks__Output,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type TaskAck__Output,
  type TaskResult,
  type WorkerReport,
  type WorkerReports,
} from '../../proto/src/grpc.ts';
import type { ResultRejectReason } from '../../proto/src/schemas/codes.ts';
import {
  MAX_CHUNK_CHARS,
  MAX_REPORTS_PER_MESSAGE,
  taskAckMessageSchema,
} from '../../proto/src/schemas/grpc.ts';
import { createChunkCoalescer } from './chunk-coalescer.ts';

/**
 * A result may be reported a little after the task's own deadline: a task
 * that timed out must still be able to say so.
 */
export const REPORT_GRACE_MS = 5_000;
/**
 * Backoff before a result is sent again (on a new stream, or after
 * `store_unavailable`): the cap doubles from 200 ms to 2 s and stays there
 * until the attempt's deadline (plus grace) passes, so a master that
 * restarts in the meantime still gets the result.
 */
const RETRY_BACKOFF = { baseMs: 200, maxMs: 2_000 };

/**
 * How long results may wait behind a dial that neither connects nor fails.
 * After a master container is replaced, the name `master` may still resolve
 * to the old container's address for a moment; a dial to it can get no answer
 * at all (packets dropped, not refused), and then waits out the kernel's SYN
 * retries, about 2 minutes, with every report queued behind it: longer than
 * a task's deadline. A new channel dials again from a fresh look-up.
 */
export const DIAL_TIMEOUT_MS = 10_000;
/** How often a link with results waiting looks whether its channel is stuck dialling. */
const DIAL_CHECK_MS = 1_000;

/** The master kept the lease but could not commit (its store is down): send again later. */
const RESEND_REASON: ResultRejectReason = 'store_unavailable';
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
/** Refused chunks remembered (the attempt's later chunks and its result are not sent). */
const MAX_REFUSED_ATTEMPTS = 1_024;

export interface AttemptRef {
  taskId: string;
  attempt: number;
  lease: string;
  deadline: number;
}

export interface TaskStream {
  /**
   * Sends a piece of text, joined with the attempt's other pieces of the
   * coalescing window; dropped once the master refused the attempt.
   */
  write(text: string): void;
  /** Sends the held text, then the final result; resolves with the master's answer (undefined if it never came). */
  finish(result: TaskResult): Promise<TaskAck__Output | undefined>;
  /** Pieces written so far (fewer chunks go out when pieces are joined). */
  readonly chunks: number;
}

export interface ResultReporter {
  openStream(ref: AttemptRef): TaskStream;
  /** A result with no chunks before it; undefined when the master could not be reached in time. */
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
  /**
   * How long a chunk may wait for more text of its attempt to join it
   * (CHUNK_COALESCE_MS); 0 sends each chunk at the next turn of the event loop.
   */
  coalesceMs?: number;
  /** DIAL_TIMEOUT_MS unless set (tests). */
  dialTimeoutMs?: number;
  log: Logger;
}

/**
 * grpc-js backs off reconnects up to 120 s by default. A worker whose network
 * came back after a long cut is online again over MQTT within a second and
 * gets work, but every report would fail at once ("No connection
 * established") until that backoff ran out. Capped at 2 s, a report waits at
 * most that long; a dial every 2 s to an absent master costs nothing.
 */
export const GRPC_CHANNEL_OPTIONS = {
  // A master that vanished without closing its connections (a replaced container's
  // address drops packets) is noticed within 15 s, and pending results go to the new one.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 2_000,
} as const;

interface PendingResult {
  result: TaskResult;
  /** The attempt's deadline; the result is given up REPORT_GRACE_MS after it. */
  deadline: number;
  resolve(ack: TaskAck__Output | undefined): void;
  /** Sends so far that came back `store_unavailable` (for the backoff). */
  tries: number;
  expiry: NodeJS.Timeout;
  resend?: NodeJS.Timeout;
}

const attemptKey = (taskId: string, attempt: number) => `${taskId}#${attempt}`;

export function createResultReporter(options: GrpcLinkOptions): ResultReporter {
  const { proto } = loadMasterPackage();
  const newClient = (): MasterClient => {
    const made: MasterClient = new proto.flota.v1.Master(
      options.address,
      options.channelCredentials,
      // A channel of its own: a replacement must not be handed the stuck
      // connection again from grpc-js's process-wide pool.
      { ...GRPC_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 },
    );
    // Connect now, not at the first report: the first task's answer does not wait for a handshake.
    made.getChannel().getConnectivityState(true);
    return made;
  };
  let client = newClient();
  const dialTimeoutMs = options.dialTimeoutMs ?? DIAL_TIMEOUT_MS;
  let dialingSince: number | undefined;
  let dialCheck: NodeJS.Timeout | undefined;
  const log = options.log.child({ component: 'grpc-link' });
  let call: grpc.ClientDuplexStream<WorkerReports, MasterAcks__Output> | undefined;
  let outbox: WorkerReport[] = [];
  let flushQueued = false;
  let reconnects = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const pending = new Map<string, PendingResult>();
  const refusedChunks = new LRUCache<string, TaskAck__Output>({ max: MAX_REFUSED_ATTEMPTS });
  const coalescer = createChunkCoalescer(options.coalesceMs ?? 0, MAX_CHUNK_CHARS);

  const metadata = () => {
    const md = new grpc.Metadata();
    md.set(METADATA_WORKER_ID, options.workerId);
    md.set(METADATA_AUTHORIZATION, bearer(options.credential));
    return md;
  };

  const settle = (key: string, ack: TaskAck__Output | undefined) => {
    const entry = pending.get(key);
    if (!entry) return;
    pending.delete(key);
    clearTimeout(entry.expiry);
    clearTimeout(entry.resend);
    entry.resolve(ack);
    if (pending.size === 0) {
      clearInterval(dialCheck);
      dialCheck = undefined;
      dialingSince = undefined;
    }
  };

  /** While results wait: a channel dialling for DIAL_TIMEOUT_MS is replaced, and they go again. */
  const checkDial = () => {
    if (closed || pending.size === 0) return;
    if (client.getChannel().getConnectivityState(false) !== grpc.connectivityState.CONNECTING) {
      dialingSince = undefined;
      return;
    }
    dialingSince ??= Date.now();
    if (Date.now() - dialingSince < dialTimeoutMs) return;
    log.warn(
      { results: pending.size, dialingMs: Date.now() - dialingSince },
      'the master did not answer a dial: dialling again on a new channel',
    );
    dialingSince = undefined;
    const stuck = call;
    call = undefined; // its CANCELLED below is not a break to handle
    stuck?.cancel();
    client.close();
    client = newClient();
    clearTimeout(reconnectTimer);
    reconnectTimer = undefined;
    for (const entry of pending.values()) {
      clearTimeout(entry.resend);
      send({ result: entry.result });
    }
  };

  const onAcks = (message: MasterAcks__Output) => {
    reconnects = 0;
    for (const raw of message.acks ?? []) {
      const parsed = taskAckMessageSchema.safeParse(raw);
      if (!parsed.success) {
        log.warn({ reason: parsed.error.message }, 'answer from the master dropped: invalid');
        continue;
      }
      const ack = raw;
      const key = attemptKey(ack.taskId, ack.attempt);
      if (!ack.final) {
        refusedChunks.set(key, ack);
        continue;
      }
      const entry = pending.get(key);
      if (!entry) continue;
      if (ack.accepted || ack.reason !== RESEND_REASON) {
        settle(key, ack);
        continue;
      }
      // Kept the lease, could not store: the same result again after a pause.
      const delay = backoffDelay(entry.tries, RETRY_BACKOFF);
      entry.tries += 1;
      log.debug(
        { taskId: ack.taskId, attempt: ack.attempt, delay },
        'master store busy; resending',
      );
      entry.resend = setTimeout(() => send({ result: entry.result }), delay);
    }
  };

  const onBroken = (error: grpc.ServiceError | undefined) => {
    if (!call) return;
    call = undefined;
    if (closed) return;
    if (error && REFUSED.has(error.code)) {
      // Loud: without a credential the master takes, no result of this worker counts.
      log.error(
        { err: error.details, results: pending.size },
        "the master refused this worker's report stream: check WORKER_TOKEN",
      );
      for (const key of [...pending.keys()]) settle(key, undefined);
      return;
    }
    if (pending.size === 0) return; // opened again with the next report
    const delay = backoffDelay(reconnects, RETRY_BACKOFF);
    reconnects += 1;
    log.debug(
      { err: error?.message, results: pending.size, delay },
      'report stream broke; reopening',
    );
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      for (const entry of pending.values()) {
        clearTimeout(entry.resend); // sent now: a resend already waiting would send it twice
        send({ result: entry.result });
      }
    }, delay);
  };

  const open = () => {
    const next = client.Connect(metadata());
    call = next;
    next.on('data', onAcks);
    next.on('error', (error: grpc.ServiceError) => {
      if (call === next) onBroken(error);
    });
    next.on('end', () => {
      if (call === next) onBroken(undefined);
    });
    return next;
  };

  const flush = () => {
    flushQueued = false;
    if (closed || outbox.length === 0) return;
    const stream = call ?? open();
    while (outbox.length > 0) {
      stream.write({ reports: outbox.slice(0, MAX_REPORTS_PER_MESSAGE) });
      outbox = outbox.slice(MAX_REPORTS_PER_MESSAGE);
    }
  };

  /** Reports leave together, once per turn of the event loop. */
  const send = (report: WorkerReport) => {
    if (closed) return;
    outbox.push(report);
    if (flushQueued) return;
    flushQueued = true;
    setImmediate(flush);
  };

  const report = (result: TaskResult, deadline: number) =>
    new Promise<TaskAck__Output | undefined>((resolve) => {
      const key = attemptKey(result.taskId ?? '', result.attempt ?? 0);
      settle(key, undefined); // a result sent twice: the newer one counts
      const stopAt = deadline + REPORT_GRACE_MS;
      const expiry = setTimeout(
        () => {
          log.warn(
            { taskId: result.taskId, attempt: result.attempt },
            'result could not be delivered',
          );
          settle(key, undefined);
        },
        Math.max(0, stopAt - Date.now()),
      );
      pending.set(key, { result, deadline, resolve, tries: 0, expiry });
      dialCheck ??= setInterval(checkDial, Math.min(DIAL_CHECK_MS, dialTimeoutMs)).unref();
      send({ result });
    });

  const openStream = (ref: AttemptRef): TaskStream => {
    let seq = 0;
    let written = 0;
    const key = attemptKey(ref.taskId, ref.attempt);
    const base = { taskId: ref.taskId, attempt: ref.attempt, lease: ref.lease };
    const held = coalescer.open((text) => {
      if (refusedChunks.has(key)) return;
      send({ chunk: { ...base, seq, text } });
      seq += 1;
    });
    return {
      get chunks() {
        return written;
      },
      write(text: string) {
        written += 1;
        if (!refusedChunks.has(key)) held.write(text);
      },
      async finish(result: TaskResult) {
        held.flush();
        // The master refused the attempt's chunks: its result would be refused the same way.
        const refusal = refusedChunks.get(key);
        if (refusal && refusal.reason !== RESEND_REASON) return refusal;
        return report(result, ref.deadline);
      },
    };
  };

  return {
    openStream,
    report,
    close() {
      closed = true;
      clearTimeout(reconnectTimer);
      clearInterval(dialCheck);
      coalescer.close();
      for (const key of [...pending.keys()]) settle(key, undefined);
      call?.end();
      call = undefined;
      client.close();
    },
  };
}
