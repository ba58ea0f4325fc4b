/**
 * The stack as a client sees it, through the master's published port: REST
 * with an API token, and a Socket.IO session that follows the outbox rules of
 * docs/API.md (deduplicate by epoch and outboxSeq, resume with the pending
 * tasks) and counts every terminal event it accepts, per task.
 */
import { randomUUID } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';

export interface TaskView {
  id: string;
  state: string;
  attempt?: number;
  result?: string;
  workerId?: string;
}

/** A worker as GET /api/workers lists it (the fields the scenarios read). */
export interface WorkerView {
  id: string;
  state: string;
  version: string;
  labels: Record<string, string>;
}

export class Api {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async request(path: string, init: RequestInit = {}, token: string | null = this.token) {
    const headers = new Headers(init.headers);
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    return fetch(`${this.url}${path}`, { ...init, headers, signal: AbortSignal.timeout(5_000) });
  }

  async json<T>(path: string): Promise<T> {
    const response = await this.request(path);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  /**
   * Submits a task, retrying (with the same Idempotency-Key) while the
   * master is away, as a careful client does. Returns the task id.
   */
  async submit(
    prompt: string,
    options: {
      session?: string;
      timeoutMs?: number;
      requires?: { labels: Record<string, string> };
    } = {},
  ) {
    const key = randomUUID();
    const deadline = Date.now() + (options.timeoutMs ?? 90_000);
    for (;;) {
      try {
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'idempotency-key': key,
        };
        if (options.session) headers['x-flota-session'] = options.session;
        const response = await this.request('/api/tasks', {
          method: 'POST',
          headers,
          body: JSON.stringify({ prompt, model: 'echo', cache: false, requires: options.requires }),
        });
        if (response.status === 202) return ((await response.json()) as { id: string }).id;
        if (response.status < 500) {
          throw new Error(`POST /api/tasks: ${response.status} ${await response.text()}`);
        }
      } catch (err) {
        if ((err as Error).message.startsWith('POST /api/tasks')) throw err;
      }
      if (Date.now() > deadline) throw new Error(`could not submit "${prompt.slice(0, 40)}…"`);
      await sleep(500);
    }
  }

  /** The task view, or undefined while the master does not answer. */
  async task(id: string): Promise<TaskView | undefined> {
    try {
      const response = await this.request(`/api/tasks/${encodeURIComponent(id)}`);
      if (response.status === 404) return { id, state: 'unknown' };
      if (!response.ok) return undefined;
      return (await response.json()) as TaskView;
    } catch {
      return undefined;
    }
  }

  /** Waits until every task has ended; returns their views. */
  async finished(ids: string[], timeoutMs: number): Promise<Map<string, TaskView>> {
    const done = new Map<string, TaskView>();
    const deadline = Date.now() + timeoutMs;
    while (done.size < ids.length) {
      for (const id of ids) {
        if (done.has(id)) continue;
        const view = await this.task(id);
        if (view && ['completed', 'failed', 'cancelled', 'unknown'].includes(view.state)) {
          done.set(id, view);
        }
      }
      if (done.size === ids.length) break;
      if (Date.now() > deadline) {
        throw new Error(
          `${ids.length - done.size} of ${ids.length} tasks did not end within ${timeoutMs} ms`,
        );
      }
      await sleep(500);
    }
    return done;
  }

  /** The workers the master knows, or none while it does not answer. */
  async workers(): Promise<WorkerView[]> {
    try {
      const body = await this.json<unknown>('/api/workers');
      const list = Array.isArray(body) ? body : ((body as { workers?: unknown[] }).workers ?? []);
      return list as WorkerView[];
    } catch {
      return [];
    }
  }

  async onlineWorkers(): Promise<string[]> {
    return (await this.workers())
      .filter((worker) => worker.state === 'online')
      .map((worker) => worker.id)
      .sort();
  }
}

interface Stamped {
  taskId?: string;
  id?: string;
  outboxSeq: number;
}

/** A chat session over Socket.IO, counting terminal events per task. */
export class Session {
  readonly id = `swarm-${randomUUID().slice(0, 12)}`;
  readonly terminal = new Map<string, number>();
  readonly pending = new Set<string>();
  private epoch: string | undefined;
  private lastSeq = 0;
  private readonly socket: Socket;
  reconnects = 0;
  /** What the session saw, for the report when a task's answer goes missing. */
  readonly history: string[] = [];

  constructor(url: string, token: string) {
    this.socket = io(url, {
      auth: { token },
      transports: ['websocket'],
      reconnectionDelay: 300,
      reconnectionDelayMax: 1_000,
    });
    // A master that stops closes its sockets itself ("io server disconnect"),
    // after which Socket.IO does not reconnect on its own: the chat UI
    // connects again (web/js/connection.js), and so does this client.
    this.socket.on('disconnect', (reason) => {
      this.history.push(`${new Date().toISOString().slice(11, 23)} disconnected: ${reason}`);
      if (reason === 'io server disconnect') setTimeout(() => this.socket.connect(), 300);
    });
    this.socket.on('connect', () => {
      this.reconnects++;
      this.hello();
    });
    this.socket.on('task:events', (batch: { events?: { name: string; payload: Stamped }[] }) => {
      for (const event of batch?.events ?? []) this.apply(event.name, event.payload);
      this.socket.emit('session:ack', { seq: this.lastSeq });
    });
  }

  private hello() {
    const resume = this.epoch ? { epoch: this.epoch, lastSeq: this.lastSeq } : undefined;
    this.socket.emit(
      'session:hello',
      { sessionId: this.id, resume, pending: [...this.pending] },
      (ack: { ok: boolean; epoch?: string; resumed?: string; error?: string }) => {
        this.history.push(
          `${new Date().toISOString().slice(11, 23)} hello ack ok=${ack?.ok} epoch=${ack?.epoch} resumed=${ack?.resumed} ${ack?.error ?? ''} (sent lastSeq ${this.lastSeq}, ${this.pending.size} pending)`,
        );
        if (!ack?.ok || !ack.epoch) return;
        if (ack.epoch !== this.epoch) this.lastSeq = 0;
        this.epoch = ack.epoch;
      },
    );
  }

  private apply(name: string, payload: Stamped) {
    const taskId = payload.id ?? payload.taskId;
    const seen = payload.outboxSeq > this.lastSeq;
    this.history.push(
      `${new Date().toISOString().slice(11, 23)} ${name} ${taskId} seq=${payload.outboxSeq} lastSeq=${this.lastSeq}${seen ? '' : ' (skipped)'}`,
    );
    if (!seen) return;
    this.lastSeq = payload.outboxSeq;
    if (name !== 'task:completed' && name !== 'task:failed') return;
    if (!taskId) return;
    this.terminal.set(taskId, (this.terminal.get(taskId) ?? 0) + 1);
    this.pending.delete(taskId);
  }

  async connected(timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.socket.connected || !this.epoch) {
      if (Date.now() > deadline) throw new Error('the Socket.IO session did not connect');
      await sleep(100);
    }
  }

  expect(taskId: string) {
    if (!this.terminal.has(taskId)) this.pending.add(taskId);
  }

  close() {
    this.socket.close();
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 500 ms until it returns a value (not undefined/false). */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | false> | T | undefined | false,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}
