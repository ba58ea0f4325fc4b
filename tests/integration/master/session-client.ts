/**
 * A browser session as the outbox protocol expects one to behave: hello with
 * resume and pending on every connect, drop events at or below lastSeq, ack.
 * It records every task event it accepts, so tests can count deliveries.
 */
import { io, type Socket } from 'socket.io-client';
import type {
  Ack,
  ClientToServerEvents,
  HelloReply,
  ServerToClientEvents,
  TaskEventName,
} from '../../../proto/src/socket-events.ts';
import { onTaskEvents } from '../../helpers/task-events.ts';
import { waitFor } from '../../helpers/wait-for.ts';

export interface Received {
  name: TaskEventName;
  outboxSeq: number;
  payload: Record<string, unknown>;
}

export class SessionClient {
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  readonly accepted: Received[] = [];
  duplicatesDropped = 0;
  epoch: string | undefined;
  lastSeq = 0;
  hellos: HelloReply[] = [];
  private readonly finished = new Set<string>();
  private readonly known = new Set<string>();

  constructor(
    url: string,
    readonly sessionId: string,
  ) {
    this.socket = io(url, {
      transports: ['websocket'],
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
    });
    this.socket.on('connect', () => this.hello());
    // A master that shuts down closes its sockets; a browser tab would come back, so does this.
    this.socket.on('disconnect', (reason) => {
      if (reason === 'io server disconnect') this.socket.connect();
    });
    onTaskEvents(this.socket, (name, payload) =>
      this.onEvent(name, payload as unknown as Record<string, unknown>),
    );
  }

  /** Task ids this session waits for (known and not finished). */
  pending(): string[] {
    return [...this.known].filter((id) => !this.finished.has(id));
  }

  async submit(prompt: string, extra: Record<string, unknown> = {}): Promise<string> {
    const reply = (await this.socket
      .timeout(10_000)
      .emitWithAck('task:submit', { prompt, ...extra })) as Ack<{ taskId: string }>;
    if (!reply.ok) throw new Error(reply.error);
    this.known.add(reply.taskId);
    return reply.taskId;
  }

  async cancel(taskId: string): Promise<Ack<{ state: string }>> {
    return (await this.socket.timeout(10_000).emitWithAck('task:cancel', { taskId })) as Ack<{
      state: string;
    }>;
  }

  terminal(taskId: string): Received[] {
    return this.accepted.filter(
      (e) => (e.name === 'task:completed' || e.name === 'task:failed') && e.payload.id === taskId,
    );
  }

  waitTerminal(taskId: string, timeoutMs = 20_000): Promise<Received> {
    return waitFor(() => this.terminal(taskId)[0], {
      timeoutMs,
      what: `terminal event of ${taskId}`,
    });
  }

  close(): void {
    this.socket.close();
  }

  private hello(): void {
    const resume = this.epoch ? { epoch: this.epoch, lastSeq: this.lastSeq } : undefined;
    this.socket.emit(
      'session:hello',
      { sessionId: this.sessionId, resume, pending: this.pending() },
      (reply: Ack<HelloReply>) => {
        if (!reply.ok) throw new Error(`hello refused: ${reply.error}`);
        if (reply.epoch !== this.epoch) this.lastSeq = 0;
        this.epoch = reply.epoch;
        this.hellos.push(reply);
      },
    );
  }

  private onEvent(name: TaskEventName, payload: Record<string, unknown>): void {
    const outboxSeq = Number(payload.outboxSeq);
    if (outboxSeq <= this.lastSeq) {
      this.duplicatesDropped += 1;
      return;
    }
    this.lastSeq = outboxSeq;
    this.accepted.push({ name, outboxSeq, payload });
    const taskId = String(payload.taskId ?? payload.id);
    this.known.add(taskId);
    if (name === 'task:completed' || name === 'task:failed') this.finished.add(taskId);
    this.socket.emit('session:ack', { seq: outboxSeq });
  }
}
