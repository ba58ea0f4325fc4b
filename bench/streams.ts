/**
 * The streaming scenario: `--streams` answers streamed at once, token by
 * token, from echo workers of their own to `--stream-sessions` Socket.IO
 * sessions, as browsers receive them. It measures the tokens that reach the
 * sessions per second and the delay each token picks up between its
 * production on the worker and its arrival at the client.
 *
 * A token is one echo chunk of TOKEN_CHARS characters (`ECHO_CHUNK_SIZE`),
 * and the echo worker makes token i of an attempt due at `startedAt + (i + 1)
 * × --stream-token-ms`, producing none before it is due (see
 * worker/src/providers/echo.ts). `startedAt` reaches the client in the
 * terminal event's timings, so a token's production time follows from its
 * index without being carried: its delay is its arrival (this process's clock,
 * set to the same system clock, sub-millisecond) minus that due time. A worker
 * late on its schedule makes the delay larger, never smaller.
 */
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { TASK_EVENTS_BATCH } from '../proto/src/socket-events.ts';
import type { Cleanup } from './cleanup.ts';
import { type CpuGroups, perTaskMs, startCpuMeter } from './cpu.ts';
import { guarded, round2 } from './drive.ts';
import { deadReason } from './processes.ts';
import type { Progress } from './progress.ts';
import { spawnWorker, waitForOnline, workerCredentials } from './system.ts';

/** The model only the stream workers serve, so the other scenarios' tasks never reach them. */
export const STREAM_MODEL = 'echo-stream';
/** Characters per token: the stream workers' ECHO_CHUNK_SIZE. */
export const TOKEN_CHARS = 4;
const ECHO_PREFIX = 'echo: ';
const ACK_EVERY_MS = 50;
const SUBMIT_TIMEOUT_MS = 30_000;
/** Delays are kept in a histogram of 0.05 ms bins up to a minute (the rest in the last bin). */
const BIN_MS = 0.05;
const BINS = 60_000 / BIN_MS;

const helloReplySchema = z.object({ ok: z.literal(true) }).loose();
const submitReplySchema = z.object({ ok: z.literal(true), taskId: z.string() }).loose();

export interface StreamParams {
  /** Concurrent streams; 0 skips the scenario. */
  streams: number;
  /** Tokens per answer. */
  tokens: number;
  /** The echo workers' time between tokens (ECHO_DELAY_MS). */
  tokenMs: number;
  /** How long the measured window lasts. */
  seconds: number;
  sessions: number;
  workers: number;
  /** The workers' CHUNK_COALESCE_MS; undefined = their default. */
  coalesceMs?: number;
}

export interface StreamsResult {
  streams: number;
  tokensPerAnswer: number;
  tokenMs: number;
  /** What the streams produce at their pace: streams × 1000 / tokenMs. */
  offeredTokensPerSec: number;
  /** Tokens that reached a session in the measured window, per second. */
  tokensPerSec: number;
  /** Production on the worker → arrival at the client, per token. */
  delayMs: { p50: number; p90: number; p99: number; max: number };
  /** Tokens per `task:chunk` event, and Socket.IO messages per second, in the window. */
  tokensPerChunkEvent: number;
  socketMessagesPerSec: number;
  windowSeconds: number;
  tokensInWindow: number;
  answers: number;
  failed: number;
  /** Answers whose text came doubled (chunks beyond the answer) or whose final text was not the answer. */
  mismatched: number;
  /** CPU ms per 1,000 tokens of each component over the window. */
  cpuMsPer1kTokens: Record<string, number>;
  coalesceMs?: number;
}

/** Epoch milliseconds with sub-millisecond resolution: this process's monotonic clock, set once to the system clock. */
function wallClock(): () => number {
  const hr = () => performance.timeOrigin + performance.now();
  // Date.now() ticks whole milliseconds: read the offset right at a tick.
  const first = Date.now();
  let now = Date.now();
  while (now === first) now = Date.now();
  const offset = now - hr();
  return () => hr() + offset;
}

class DelayHistogram {
  private readonly bins = new Uint32Array(BINS);
  count = 0;
  max = 0;

  add(ms: number): void {
    const at = Math.min(BINS - 1, Math.max(0, Math.floor(ms / BIN_MS)));
    this.bins[at] = (this.bins[at] ?? 0) + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** The upper edge of the bin holding the p-th percentile. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      seen += this.bins[i] ?? 0;
      if (seen >= rank) return round2((i + 1) * BIN_MS);
    }
    return round2(this.max);
  }
}

/** One answer as the client sees it: its chunks' token ranges and arrival times. */
interface Track {
  attempt: number;
  chars: number;
  /** Flat triples: first token index, end token index, arrival (wall ms). */
  arrivals: number[];
  end?: End;
  onEnd?: () => void;
}

interface End {
  state: string;
  startedAt?: number;
  /** Characters of the answer the terminal event carries. */
  resultChars: number;
  at: number;
}

interface Terminal {
  id?: unknown;
  state?: unknown;
  result?: unknown;
  timings?: { startedAt?: unknown };
}

class StreamSession {
  private lastSeq = 0;
  private ackedSeq = 0;
  private readonly ackTimer: NodeJS.Timeout;

  constructor(
    readonly socket: Socket,
    private readonly client: StreamClient,
  ) {
    socket.onAny((name: string, payload: unknown) => {
      const at = client.now();
      client.onMessage(at);
      if (name !== TASK_EVENTS_BATCH) {
        this.onEvent(name, payload, at);
        return;
      }
      const events = (payload as { events?: unknown } | undefined)?.events;
      if (!Array.isArray(events)) return;
      for (const e of events as Array<{ name?: unknown; payload?: unknown }>) {
        if (typeof e?.name === 'string') this.onEvent(e.name, e.payload, at);
      }
    });
    this.ackTimer = setInterval(() => {
      if (this.lastSeq > this.ackedSeq && socket.connected) {
        this.ackedSeq = this.lastSeq;
        socket.emit('session:ack', { seq: this.lastSeq });
      }
    }, ACK_EVERY_MS);
  }

  private onEvent(name: string, payload: unknown, at: number): void {
    const seq = (payload as { outboxSeq?: unknown } | undefined)?.outboxSeq;
    if (typeof seq !== 'number' || seq <= this.lastSeq) return;
    this.lastSeq = seq;
    if (name === 'task:chunk') {
      const c = payload as { taskId?: unknown; attempt?: unknown; text?: unknown };
      if (typeof c.taskId !== 'string' || typeof c.text !== 'string') return;
      this.client.onChunk(c.taskId, Number(c.attempt), c.text, at);
    } else if (name === 'task:completed' || name === 'task:failed') {
      const t = payload as Terminal;
      if (typeof t.id !== 'string') return;
      const startedAt = t.timings?.startedAt;
      this.client.onEnd(t.id, {
        state: String(t.state),
        startedAt: typeof startedAt === 'number' ? startedAt : undefined,
        resultChars: typeof t.result === 'string' ? t.result.length : 0,
        at,
      });
    }
  }

  close(): void {
    clearInterval(this.ackTimer);
    this.socket.close();
  }
}

/** Socket.IO sessions that submit stream tasks and follow their chunks. */
class StreamClient {
  readonly now = wallClock();
  private readonly tracks = new Map<string, Track>();
  private sessions: StreamSession[] = [];
  /** Socket.IO messages received and when the window counts them. */
  messages = 0;
  chunkEvents = 0;
  private window: { from: number; to: number } | undefined;

  private constructor(private readonly baseUrl: string) {}

  static async open(baseUrl: string, count: number, tag: string): Promise<StreamClient> {
    const client = new StreamClient(baseUrl);
    client.sessions = await Promise.all(
      Array.from({ length: count }, (_, i) => client.connect(`${tag}-s${i}`)),
    );
    return client;
  }

  private async connect(sessionId: string): Promise<StreamSession> {
    const socket = io(this.baseUrl, { transports: ['websocket'], reconnection: false });
    const session = new StreamSession(socket, this);
    const reply = await socket.timeout(10_000).emitWithAck('session:hello', { sessionId });
    if (!helloReplySchema.safeParse(reply).success) {
      session.close();
      throw new Error(`session:hello refused: ${JSON.stringify(reply)}`);
    }
    return session;
  }

  /** Counts messages and chunk events from now until `to` (wall ms). */
  countFrom(from: number, to: number): void {
    this.window = { from, to };
  }

  private inWindow(at: number): boolean {
    return this.window !== undefined && at >= this.window.from && at <= this.window.to;
  }

  onMessage(at: number): void {
    if (this.inWindow(at)) this.messages++;
  }

  private track(taskId: string): Track {
    let t = this.tracks.get(taskId);
    if (!t) {
      t = { attempt: 0, chars: 0, arrivals: [] };
      this.tracks.set(taskId, t);
    }
    return t;
  }

  onChunk(taskId: string, attempt: number, text: string, at: number): void {
    const t = this.track(taskId);
    if (attempt > t.attempt) {
      // A retried attempt streams its answer again from the start.
      t.attempt = attempt;
      t.chars = 0;
      t.arrivals = [];
    } else if (attempt < t.attempt) return;
    const from = Math.floor(t.chars / TOKEN_CHARS);
    t.chars += text.length;
    t.arrivals.push(from, Math.floor(t.chars / TOKEN_CHARS), at);
    if (this.inWindow(at)) this.chunkEvents++;
  }

  onEnd(taskId: string, end: End): void {
    const t = this.track(taskId);
    t.end = end;
    t.onEnd?.();
  }

  /** Submits one task on `session` and resolves with its track once it ended. */
  async run(sessionIndex: number, prompt: string): Promise<Track> {
    const session = this.sessions[sessionIndex % this.sessions.length] as StreamSession;
    const reply = await session.socket
      .timeout(SUBMIT_TIMEOUT_MS)
      .emitWithAck('task:submit', { prompt, model: STREAM_MODEL });
    const ok = submitReplySchema.safeParse(reply);
    if (!ok.success) throw new Error(`task:submit refused: ${JSON.stringify(reply)}`);
    const t = this.track(ok.data.taskId);
    if (!t.end) await new Promise<void>((resolve) => (t.onEnd = resolve));
    this.tracks.delete(ok.data.taskId);
    return t;
  }

  close(): void {
    for (const s of this.sessions) s.close();
    this.sessions = [];
  }
}

/** A prompt whose echo answer is exactly `tokens` tokens, starting with `id`. */
export function streamPrompt(id: string, tokens: number): string {
  const length = Math.max(1, tokens * TOKEN_CHARS - ECHO_PREFIX.length);
  return `${id} `.padEnd(length, 'x').slice(0, length);
}

export interface StreamsContext {
  baseUrl: string;
  mqttUrl: string;
  grpcPort: number;
  masterPid: number;
  logLevel: string;
  nodeArgs: string[];
  stallMs: number;
  /** The stream workers' processes are added here for profiling. */
  onWorkers?: (workers: Array<{ pid: number; id: string }>) => void;
}

/** Spawns the stream workers, runs the streams, stops the workers again. */
export async function runStreams(
  cleanup: Cleanup,
  progress: Progress,
  ctx: StreamsContext,
  params: StreamParams,
): Promise<StreamsResult> {
  const ids = Array.from({ length: params.workers }, (_, i) => `stream-${i + 1}`);
  const credentials = await workerCredentials({ baseUrl: ctx.baseUrl }, ids);
  // Room for every stream, and for the next task of a lane while its last one is committed.
  const slots = Math.min(1024, Math.ceil((params.streams * 1.25) / params.workers) + 1);
  const workers = ids.map((id) =>
    spawnWorker(cleanup, {
      id,
      credential: credentials.get(id) as string,
      mqttUrl: ctx.mqttUrl,
      grpcPort: ctx.grpcPort,
      slots,
      logLevel: ctx.logLevel,
      nodeArgs: ctx.nodeArgs,
      env: {
        MODELS: STREAM_MODEL,
        ECHO_CHUNK_SIZE: String(TOKEN_CHARS),
        ECHO_DELAY_MS: String(params.tokenMs),
        ...(params.coalesceMs === undefined
          ? {}
          : { CHUNK_COALESCE_MS: String(params.coalesceMs) }),
      },
    }),
  );
  let client: StreamClient | undefined;
  try {
    await waitForOnline(ctx.baseUrl, (id) => id.startsWith('stream-'), params.workers, {
      timeoutMs: 90_000,
      alive: () => workers.map((w) => deadReason(w.proc)).find((why) => why !== undefined),
    });
    ctx.onWorkers?.(workers.map((w, i) => ({ pid: w.proc.pid, id: ids[i] as string })));
    client = await StreamClient.open(
      ctx.baseUrl,
      params.sessions,
      `stream-${randomBytes(4).toString('hex')}`,
    );
    return await drive(client, progress, ctx, params, {
      master: [ctx.masterPid],
      workers: workers.map((w) => w.proc.pid),
    });
  } finally {
    client?.close();
    await Promise.all(workers.map((w) => w.stop()));
  }
}

async function drive(
  client: StreamClient,
  progress: Progress,
  ctx: StreamsContext,
  params: StreamParams,
  cpuGroups: CpuGroups,
): Promise<StreamsResult> {
  const answerMs = params.tokens * params.tokenMs;
  const start = client.now();
  // Lanes start spread over one answer, so answers do not all end (and restart) together.
  const staggerMs = answerMs / params.streams;
  const from = start + answerMs + 1_000;
  const to = from + params.seconds * 1_000;
  client.countFrom(from, to);
  const delays = new DelayHistogram();
  let tokensInWindow = 0;
  let answers = 0;
  let failed = 0;
  let mismatched = 0;

  const bar = progress.bar(`${params.streams} streams`, Math.ceil((to - start) / 1000));
  const ticker = setInterval(() => bar.update(Math.floor((client.now() - start) / 1000)), 250);
  let cpuUsed: Promise<() => Promise<Record<string, number>>> | undefined;
  const meterAt = setTimeout(() => (cpuUsed = startCpuMeter(cpuGroups)), from - start);
  let cpu: Promise<Record<string, number>> | undefined;
  const meterEnd = setTimeout(() => (cpu = cpuUsed?.then((used) => used())), to - start);

  const account = (t: Track) => {
    answers++;
    const startedAt = t.end?.startedAt;
    if (t.end?.state !== 'completed' || startedAt === undefined) {
      failed++;
      return;
    }
    const answerChars = params.tokens * TOKEN_CHARS;
    if (t.chars > answerChars || t.end.resultChars !== answerChars) mismatched++;
    // Chunks of the turn an answer ended in are left out: the terminal event brings the rest.
    const a = [...t.arrivals, Math.floor(t.chars / TOKEN_CHARS), params.tokens, t.end.at];
    for (let i = 0; i < a.length; i += 3) {
      const at = a[i + 2] as number;
      if (at < from || at > to) continue;
      for (let token = a[i] as number; token < (a[i + 1] as number); token++) {
        tokensInWindow++;
        delays.add(at - (startedAt + (token + 1) * params.tokenMs));
      }
    }
  };
  const lane = async (k: number) => {
    await new Promise((resolve) => setTimeout(resolve, k * staggerMs));
    for (let n = 0; client.now() < to; n++) {
      account(await client.run(k, streamPrompt(`${k}.${n}`, params.tokens)));
    }
  };
  try {
    await guarded(
      Promise.all(Array.from({ length: params.streams }, (_, k) => lane(k))),
      () => answers + client.messages,
      Math.max(ctx.stallMs, answerMs * 2),
    );
  } finally {
    clearInterval(ticker);
    clearTimeout(meterAt);
    clearTimeout(meterEnd);
  }
  const used = (await cpu) ?? {};
  const seconds = (to - from) / 1000;
  const tokensPerSec = tokensInWindow / seconds;
  bar.finish(
    `${Math.round(tokensPerSec)} tokens/s, delay p50 ${delays.percentile(50)} ms, p99 ${delays.percentile(99)} ms`,
  );
  return {
    streams: params.streams,
    tokensPerAnswer: params.tokens,
    tokenMs: params.tokenMs,
    offeredTokensPerSec: round2((params.streams * 1000) / params.tokenMs),
    tokensPerSec: round2(tokensPerSec),
    delayMs: {
      p50: delays.percentile(50),
      p90: delays.percentile(90),
      p99: delays.percentile(99),
      max: round2(delays.max),
    },
    tokensPerChunkEvent: round2(tokensInWindow / Math.max(1, client.chunkEvents)),
    socketMessagesPerSec: round2(client.messages / seconds),
    windowSeconds: seconds,
    tokensInWindow,
    answers,
    failed,
    mismatched,
    cpuMsPer1kTokens: perTaskMs(used, tokensInWindow / 1000),
    coalesceMs: params.coalesceMs,
  };
}
