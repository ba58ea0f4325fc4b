/**
 * A simulated browser session speaking the Socket.IO protocol of
 * proto/src/socket-events.ts the way the chat UI must: `session:hello` with
 * its outbox position and unfinished tasks on every connect, events filtered
 * by `outboxSeq` and acked, submissions resent with the same clientId until
 * the master accepts them.
 */
import { io, type Socket } from 'socket.io-client';
import {
  type ClientToServerEvents,
  type HelloReply,
  MAX_PENDING_IN_HELLO,
  type ServerToClientEvents,
} from '../../../proto/src/socket-events.ts';
import { onTaskEvents } from '../../helpers/task-events.ts';
import type { Submission, TaskEvent, TaskLedger } from './task-ledger.ts';

/** How long a submit or hello waits for its ack before it is sent again. */
const ACK_TIMEOUT_MS = 4_000;
/** Pause before resending after a refusal (store down, master starting). */
const RETRY_PAUSE_MS = 250;
/** Acks are batched: one `session:ack` per this many ms at most. */
const ACK_BATCH_MS = 25;

export interface SessionStats {
  connects: number;
  disconnects: number;
  hellos: number;
  helloFailures: number;
  resumed: Record<HelloReply['resumed'], number>;
  epochChanges: number;
  /** Events at or below lastSeq (replays the client already had): filtered, which is fine. */
  replayedFiltered: number;
  /** Task events without an outboxSeq (protocol violation). */
  unstamped: number;
  processed: number;
  acksSent: number;
  submitRefusals: Record<string, number>;
  submitTimeouts: number;
}

type ChaosSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class SessionClient {
  readonly stats: SessionStats = {
    connects: 0,
    disconnects: 0,
    hellos: 0,
    helloFailures: 0,
    resumed: { fresh: 0, replay: 0, resync: 0 },
    epochChanges: 0,
    replayedFiltered: 0,
    unstamped: 0,
    processed: 0,
    acksSent: 0,
    submitRefusals: {},
    submitTimeouts: 0,
  };
  private readonly socket: ChaosSocket;
  private epoch: string | undefined;
  private lastSeq = 0;
  private ready = false;
  private closed = false;
  /** Events that arrived before the hello ack settled the epoch. */
  private early: Array<[string, TaskEvent]> = [];
  private waiters: Array<() => void> = [];
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(
    url: string,
    readonly sessionId: string,
    readonly ledger: TaskLedger,
  ) {
    this.socket = io(url, {
      transports: ['websocket'],
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      timeout: 3_000,
    });
    this.socket.on('connect', () => {
      this.stats.connects++;
      void this.hello();
    });
    this.socket.on('disconnect', () => {
      this.stats.disconnects++;
      this.ready = false;
    });
    onTaskEvents(this.socket, (name, event) => this.receive(name, event as unknown as TaskEvent));
  }

  /** Connected and greeted: submissions may go out. */
  isReady(): boolean {
    return this.ready;
  }

  /** Drops the transport as a flaky network would; Socket.IO reconnects by itself. */
  blip(): void {
    this.socket.io.engine?.close();
  }

  /** Sends `sub` until the master accepts it, or until `deadlineAt` (then marks it abandoned). */
  async submit(sub: Submission, deadlineAt: number): Promise<void> {
    for (;;) {
      if (this.closed || Date.now() > deadlineAt) {
        sub.abandoned = sub.errors.at(-1) ?? 'never connected';
        return;
      }
      if (!this.ready) {
        await this.whenReady(Math.min(1_000, Math.max(0, deadlineAt - Date.now())));
        continue;
      }
      sub.sends++;
      sub.firstSentAt ??= Date.now();
      let reply: Awaited<ReturnType<ClientToServerEvents['task:submit']>> | undefined;
      try {
        reply = await new Promise((resolve, reject) => {
          this.socket
            .timeout(ACK_TIMEOUT_MS)
            .emit(
              'task:submit',
              { prompt: sub.prompt, clientId: sub.clientId, model: 'echo' },
              (err: Error | null, answer: unknown) =>
                err ? reject(err) : resolve(answer as never),
            );
        });
      } catch {
        this.stats.submitTimeouts++;
        sub.errors.push('ack timeout');
        continue;
      }
      const answer = reply as unknown as { ok: boolean; taskId?: string; error?: string };
      if (answer.ok && answer.taskId) {
        this.ledger.acked(sub, answer.taskId, Date.now());
        return;
      }
      const error = answer.error ?? 'refused without a reason';
      sub.errors.push(error);
      this.stats.submitRefusals[error] = (this.stats.submitRefusals[error] ?? 0) + 1;
      await pause(RETRY_PAUSE_MS);
    }
  }

  close(): void {
    this.closed = true;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.socket.close();
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async hello(): Promise<void> {
    const socketId = this.socket.id;
    this.ready = false;
    this.stats.hellos++;
    const pending = this.ledger.pending().slice(0, MAX_PENDING_IN_HELLO);
    const payload = {
      sessionId: this.sessionId,
      ...(this.epoch ? { resume: { epoch: this.epoch, lastSeq: this.lastSeq } } : {}),
      pending,
    };
    let reply: { ok: boolean; error?: string } & Partial<HelloReply>;
    try {
      reply = (await this.socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck('session:hello', payload)) as typeof reply;
    } catch {
      reply = { ok: false, error: 'hello ack timeout' };
    }
    if (this.closed || this.socket.id !== socketId || !this.socket.connected) return;
    if (!reply.ok || !reply.epoch || !reply.resumed) {
      this.stats.helloFailures++;
      await pause(RETRY_PAUSE_MS);
      if (this.socket.id === socketId && this.socket.connected) void this.hello();
      return;
    }
    if (reply.epoch !== this.epoch) {
      if (this.epoch) this.stats.epochChanges++;
      this.epoch = reply.epoch;
      this.lastSeq = 0;
    }
    this.stats.resumed[reply.resumed]++;
    this.ready = true;
    for (const [name, event] of this.early.splice(0)) this.process(name, event);
    for (const wake of this.waiters.splice(0)) wake();
  }

  private receive(name: string, event: TaskEvent): void {
    if (!this.ready) this.early.push([name, event]);
    else this.process(name, event);
  }

  private process(name: string, event: TaskEvent): void {
    const seq = event.outboxSeq;
    if (typeof seq !== 'number') {
      this.stats.unstamped++;
      this.ledger.record(name, event, Date.now());
      return;
    }
    if (seq <= this.lastSeq) {
      this.stats.replayedFiltered++;
      return;
    }
    this.lastSeq = seq;
    this.stats.processed++;
    this.ledger.record(name, event, Date.now());
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      if (!this.ready || !this.socket.connected) return;
      this.stats.acksSent++;
      this.socket.emit('session:ack', { seq: this.lastSeq });
    }, ACK_BATCH_MS);
  }

  private whenReady(maxWaitMs: number): Promise<void> {
    if (this.ready || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
