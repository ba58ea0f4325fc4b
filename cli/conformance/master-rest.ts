/**
 * The REST calls the checks make on the kit's master, each answer parsed
 * with the API's own schemas. The master runs on loopback without
 * API_TOKENS, so no token is needed.
 */
import { z } from 'zod';
import { type LiveConfig, type TaskView, taskViewSchema } from '../../proto/src/schemas/task.ts';
import { type WorkerView, workerViewSchema } from '../../proto/src/schemas/worker.ts';

/** Every REST call gives up after this. */
const CALL_MS = 10_000;
/** How often a task is asked for while a check waits on it. */
const POLL_MS = 50;

const submittedSchema = z.object({ id: z.string() });
const errorBodySchema = z.object({ error: z.string() });
const workersSchema = z.object({ workers: z.array(workerViewSchema) });

export interface SubmitOptions {
  prompt: string;
  model: string;
  timeoutMs?: number;
}

export class MasterRest {
  constructor(private readonly baseUrl: string) {}

  private async call(path: string, init: { method: string; body?: unknown }): Promise<Response> {
    return fetch(`${this.baseUrl}${path}`, {
      method: init.method,
      headers: { 'content-type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(CALL_MS),
    });
  }

  private async json<T>(
    path: string,
    init: { method: string; body?: unknown },
    schema: z.ZodType<T>,
  ) {
    const res = await this.call(path, init);
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      throw new Error(`${init.method} ${path}: ${res.status} ${JSON.stringify(body)}`);
    }
    return schema.parse(body);
  }

  async submit(options: SubmitOptions): Promise<string> {
    const body = { ...options, cache: false };
    return (await this.json('/api/tasks', { method: 'POST', body }, submittedSchema)).id;
  }

  task(id: string): Promise<TaskView> {
    return this.json(`/api/tasks/${encodeURIComponent(id)}`, { method: 'GET' }, taskViewSchema);
  }

  async cancel(id: string): Promise<void> {
    await this.call(`/api/tasks/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** Polls the task until `done(task)` or `ms` pass; resolves with the last view either way. */
  async waitTask(id: string, done: (task: TaskView) => boolean, ms: number): Promise<TaskView> {
    const by = Date.now() + ms;
    for (;;) {
      const task = await this.task(id);
      if (done(task) || Date.now() >= by) return task;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async workers(): Promise<WorkerView[]> {
    return (await this.json('/api/workers', { method: 'GET' }, workersSchema)).workers;
  }

  /** `POST /api/workers/:id/{drain|resume}`: the status code (200 once the worker acknowledged). */
  async command(workerId: string, command: 'drain' | 'resume'): Promise<number> {
    const res = await this.call(`/api/workers/${encodeURIComponent(workerId)}/${command}`, {
      method: 'POST',
      body: {},
    });
    await res.arrayBuffer();
    return res.status;
  }

  /** Polls the worker list until `done(worker)` or `ms` pass; the last view of it either way. */
  async waitWorker(
    workerId: string,
    done: (worker: WorkerView | undefined) => boolean,
    ms: number,
  ): Promise<WorkerView | undefined> {
    const by = Date.now() + ms;
    for (;;) {
      const worker = (await this.workers()).find((w) => w.id === workerId);
      if (done(worker) || Date.now() >= by) return worker;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /**
   * `PATCH /api/workers/:id/config`: the status code (200 once the worker
   * acknowledged, 422 when it refused, 504 with no answer) and the error's
   * message.
   */
  async configure(
    workerId: string,
    config: LiveConfig,
  ): Promise<{ status: number; message?: string }> {
    const res = await this.call(`/api/workers/${encodeURIComponent(workerId)}/config`, {
      method: 'PATCH',
      body: config,
    });
    const body = errorBodySchema.safeParse(await res.json().catch(() => undefined));
    return { status: res.status, message: body.success ? body.data.error : undefined };
  }

  /**
   * Runs a task through the OpenAI-compatible streaming route and returns
   * the task id and the text pieces in the order the master relayed them.
   * `onPiece` hears each piece as it arrives (the stream waits for it).
   */
  async stream(
    prompt: string,
    model: string,
    onPiece?: (piece: string, count: number) => Promise<void> | void,
  ): Promise<{ taskId: string; pieces: string[] }> {
    const res = await fetch(`${this.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: prompt }] }),
      signal: AbortSignal.timeout(STREAM_MS),
    });
    if (!res.ok || !res.body) throw new Error(`POST /v1/chat/completions: ${res.status}`);
    const pieces: string[] = [];
    let taskId = '';
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const bytes of res.body) {
      buffered += decoder.decode(bytes, { stream: true });
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const event = sseChunkSchema.parse(JSON.parse(line.slice(6)));
        taskId = event.id.replace(/^chatcmpl-/, '');
        const piece = event.choices[0]?.delta.content;
        if (!piece) continue;
        pieces.push(piece);
        await onPiece?.(piece, pieces.length);
      }
    }
    return { taskId, pieces };
  }
}

/** Longest a streamed task may take, continuation included. */
const STREAM_MS = 60_000;

const sseChunkSchema = z.object({
  id: z.string(),
  choices: z.array(z.object({ delta: z.object({ content: z.string().optional() }) })),
});
