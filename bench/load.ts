/**
 * The load generator: chat sessions over Socket.IO, as the browser speaks the
 * protocol of proto/src/socket-events.ts (`session:hello`, `task:submit` with
 * a clientId, results as `task:completed` stamped with `outboxSeq` inside
 * `task:events` batches, acked with `session:ack`). A share of the tasks goes through `POST /api/tasks`
 * with the session header instead, so their results reach the same socket.
 * Latency is measured here, at the client: submit call → result event.
 */
import { Agent, request } from 'node:http';
import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { type Ack, TASK_EVENTS_BATCH, TERMINAL_TASK_EVENTS } from '../proto/src/socket-events.ts';

const SESSION_HEADER = 'x-flota-session';
const ACK_EVERY_MS = 50;
const SUBMIT_TIMEOUT_MS = 30_000;

/**
 * POSTs JSON on a kept-alive connection of `agent` and resolves with the
 * status and the parsed answer. node:http rather than fetch: fetch cost the
 * load client several times the CPU per request, and the client shares the
 * machine with what it measures.
 */
function postJson(agent: Agent, url: string, headers: Record<string, string>, body: unknown) {
  const payload = JSON.stringify(body);
  return new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        timeout: SUBMIT_TIMEOUT_MS,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString()),
            });
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer from ${url} in ${SUBMIT_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const batchSchema = z.object({
  events: z.array(z.object({ name: z.string(), payload: z.unknown() })),
});
const stampSchema = z.object({ outboxSeq: z.number().int().nonnegative() }).loose();
const terminalSchema = z
  .object({
    id: z.string(),
    state: z.string(),
    outboxSeq: z.number().int().nonnegative(),
    timings: z
      .object({
        submittedAt: z.number(),
        assignedAt: z.number().optional(),
        startedAt: z.number().optional(),
        finishedAt: z.number().optional(),
        totalMs: z.number().optional(),
      })
      .loose(),
  })
  .loose();
const helloReplySchema = z.object({ ok: z.literal(true), epoch: z.string() }).loose();
const submitReplySchema = z.object({ ok: z.literal(true), taskId: z.string() }).loose();
const restReplySchema = z.object({ id: z.string() });
const batchReplySchema = z.object({
  tasks: z.array(z.union([restReplySchema, z.object({ error: z.string() })])),
});

/** A REST submission waiting for its session's next batch. */
interface Pending {
  prompt: string;
  resolve(id: string): void;
  reject(err: Error): void;
}

/** Where a task's time went, from its timings (ms; whole milliseconds on the master's clock). */
export interface Stages {
  /** submitted → assigned: the store add and the lane's take. */
  queue: number;
  /** assigned → started on the worker: the MQTT assignment. */
  dispatch: number;
  /** started → finished on the worker. */
  processing: number;
  /** finished → committed: the gRPC result and the store's completion. */
  commit: number;
}

export interface Outcome {
  /** Client-side submit → result, ms. */
  latencyMs: number;
  completed: boolean;
  /** The master's own submitted → committed figure. */
  serverTotalMs?: number;
  stages?: Stages;
}

interface Finished {
  at: number;
  completed: boolean;
  serverTotalMs?: number;
  stages?: Stages;
}

function stagesOf(t: z.infer<typeof terminalSchema>['timings']): Stages | undefined {
  const { submittedAt, assignedAt, startedAt, finishedAt, totalMs } = t;
  if (assignedAt === undefined || startedAt === undefined) return undefined;
  if (finishedAt === undefined || totalMs === undefined) return undefined;
  return {
    queue: assignedAt - submittedAt,
    dispatch: startedAt - assignedAt,
    processing: finishedAt - startedAt,
    commit: submittedAt + totalMs - finishedAt,
  };
}

/** What the sessions received: Socket.IO messages carrying task events, and the events in them. */
export interface Received {
  messages: number;
  events: number;
}

class Session {
  readonly received: Received = { messages: 0, events: 0 };
  private lastSeq = 0;
  private ackedSeq = 0;
  private readonly ackTimer: NodeJS.Timeout;

  constructor(
    readonly id: string,
    readonly socket: Socket,
    onFinished: (taskId: string, result: Finished) => void,
  ) {
    socket.on(TASK_EVENTS_BATCH, (batch: unknown) => {
      const at = performance.now();
      const parsed = batchSchema.safeParse(batch);
      if (!parsed.success) return;
      this.received.messages += 1;
      this.received.events += parsed.data.events.length;
      for (const { name, payload } of parsed.data.events) {
        const stamp = stampSchema.safeParse(payload);
        if (!stamp.success || stamp.data.outboxSeq <= this.lastSeq) continue;
        this.lastSeq = stamp.data.outboxSeq;
        if (!(TERMINAL_TASK_EVENTS as readonly string[]).includes(name)) continue;
        const view = terminalSchema.safeParse(payload);
        if (!view.success) continue;
        onFinished(view.data.id, {
          at,
          completed: view.data.state === 'completed',
          serverTotalMs: view.data.timings.totalMs,
          stages: stagesOf(view.data.timings),
        });
      }
    });
    this.ackTimer = setInterval(() => {
      if (this.lastSeq > this.ackedSeq && socket.connected) {
        this.ackedSeq = this.lastSeq;
        socket.emit('session:ack', { seq: this.lastSeq });
      }
    }, ACK_EVERY_MS);
  }

  close(): void {
    clearInterval(this.ackTimer);
    this.socket.close();
  }
}

export interface LoadOptions {
  baseUrl: string;
  sessions: number;
  /** Share of submissions sent over REST (0..1); the rest go over Socket.IO. */
  restShare: number;
  model: string;
  /** Makes session ids unique per run. */
  tag: string;
  /**
   * Above 1: REST submissions of one session made in the same turn go as one
   * `POST /api/tasks/batch` of at most this many tasks.
   */
  restBatch?: number;
}

export class LoadClient {
  private readonly waiting = new Map<string, (result: Finished) => void>();
  private readonly early = new Map<string, Finished>();
  private sessions: Session[] = [];
  private counter = 0;
  /** Kept-alive connections of the REST submissions. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  /** REST submissions waiting for the end of this turn, by session. */
  private readonly batches = new Map<Session, Pending[]>();

  private constructor(private readonly opts: LoadOptions) {}

  static async open(opts: LoadOptions): Promise<LoadClient> {
    const client = new LoadClient(opts);
    client.sessions = await Promise.all(
      Array.from({ length: opts.sessions }, (_, i) => client.connect(`${opts.tag}-s${i}`)),
    );
    return client;
  }

  private async connect(sessionId: string): Promise<Session> {
    const socket = io(this.opts.baseUrl, { transports: ['websocket'], reconnection: false });
    const session = new Session(sessionId, socket, (taskId, result) => {
      const resolve = this.waiting.get(taskId);
      if (resolve) {
        this.waiting.delete(taskId);
        resolve(result);
      } else this.early.set(taskId, result);
    });
    const reply = await socket.timeout(10_000).emitWithAck('session:hello', { sessionId });
    if (!helloReplySchema.safeParse(reply).success) {
      session.close();
      throw new Error(`session:hello refused: ${JSON.stringify(reply)}`);
    }
    return session;
  }

  private finished(taskId: string): Promise<Finished> {
    const seen = this.early.get(taskId);
    if (seen) {
      this.early.delete(taskId);
      return Promise.resolve(seen);
    }
    return new Promise((resolve) => this.waiting.set(taskId, resolve));
  }

  /** Every `1/restShare`-th submission (spread evenly) goes over REST. */
  private viaRest(n: number): boolean {
    const share = this.opts.restShare;
    return Math.floor((n + 1) * share) > Math.floor(n * share);
  }

  /** Submits one task and resolves when its result reached the session's socket. */
  async task(prompt: string): Promise<Outcome> {
    const n = this.counter++;
    const session = this.sessions[n % this.sessions.length] as Session;
    const t0 = performance.now();
    // Unique prompts: a master with a result cache must not answer any of them from it.
    const text = `${prompt} #${n} ${this.opts.tag}`;
    const batched = (this.opts.restBatch ?? 1) > 1;
    const taskId = this.viaRest(n)
      ? await (batched ? this.submitBatched(session, text) : this.submitRest(session, text))
      : await this.submitSocket(session, text, `c${n}`);
    const result = await this.finished(taskId);
    return {
      latencyMs: result.at - t0,
      completed: result.completed,
      serverTotalMs: result.serverTotalMs,
      stages: result.stages,
    };
  }

  private async submitSocket(session: Session, prompt: string, clientId: string) {
    const reply: Ack<{ taskId: string }> = await session.socket
      .timeout(SUBMIT_TIMEOUT_MS)
      .emitWithAck('task:submit', { prompt, model: this.opts.model, clientId });
    const ok = submitReplySchema.safeParse(reply);
    if (!ok.success) throw new Error(`task:submit refused: ${JSON.stringify(reply)}`);
    return ok.data.taskId;
  }

  private async submitRest(session: Session, prompt: string) {
    const { status, body } = await postJson(
      this.agent,
      `${this.opts.baseUrl}/api/tasks`,
      { [SESSION_HEADER]: session.id },
      { prompt, model: this.opts.model },
    );
    const ok = restReplySchema.safeParse(body);
    if (status !== 202 || !ok.success) {
      throw new Error(`POST /api/tasks answered ${status}: ${JSON.stringify(body)}`);
    }
    return ok.data.id;
  }

  /** Queues one REST submission for the session's batch, sent at the end of this turn or when full. */
  private submitBatched(session: Session, prompt: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(session);
      if (!batch) {
        batch = [];
        this.batches.set(session, batch);
        setImmediate(() => this.sendBatch(session));
      }
      batch.push({ prompt, resolve, reject });
      if (batch.length >= (this.opts.restBatch ?? 1)) this.sendBatch(session);
    });
  }

  private sendBatch(session: Session): void {
    const batch = this.batches.get(session);
    if (!batch) return;
    this.batches.delete(session);
    void this.postBatch(session, batch).catch((err: Error) => {
      for (const p of batch) p.reject(err);
    });
  }

  private async postBatch(session: Session, batch: Pending[]): Promise<void> {
    const { status, body } = await postJson(
      this.agent,
      `${this.opts.baseUrl}/api/tasks/batch`,
      { [SESSION_HEADER]: session.id },
      { tasks: batch.map((p) => ({ prompt: p.prompt, model: this.opts.model })) },
    );
    const ok = batchReplySchema.safeParse(body);
    if (status !== 202 || !ok.success) {
      throw new Error(`POST /api/tasks/batch answered ${status}: ${JSON.stringify(body)}`);
    }
    ok.data.tasks.forEach((entry, i) => {
      const pending = batch[i] as Pending;
      if ('id' in entry) pending.resolve(entry.id);
      else pending.reject(new Error(`a batched task was refused: ${entry.error}`));
    });
  }

  /** Task-event messages and events received so far, over all sessions. */
  received(): Received {
    const total: Received = { messages: 0, events: 0 };
    for (const s of this.sessions) {
      total.messages += s.received.messages;
      total.events += s.received.events;
    }
    return total;
  }

  close(): void {
    for (const s of this.sessions) s.close();
    this.sessions = [];
    this.agent.destroy();
  }
}
