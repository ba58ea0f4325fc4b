/**
 * The master's REST API with an API token, as a client on another machine
 * would use it, and the readiness probes for the stack's servers.
 */
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { z } from 'zod';
import { type TaskView, taskViewSchema } from '../../../proto/src/schemas/task.ts';
import { type WorkerView, workerViewSchema } from '../../../proto/src/schemas/worker.ts';

const REQUEST_TIMEOUT_MS = 5_000;
const submittedSchema = z.object({ id: z.string() });
const workersSchema = z.object({ workers: z.array(workerViewSchema) });

export class MasterApi {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call(path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  async ready(): Promise<boolean> {
    const res = await fetch(`${this.baseUrl}/readyz`, {
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return res.status === 200;
  }

  /** `POST /api/tasks`; returns the new task's id. */
  async submit(prompt: string): Promise<string> {
    const res = await this.call('/api/tasks', { prompt });
    if (res.status !== 202) {
      throw new Error(`POST /api/tasks answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    return submittedSchema.parse(res.body).id;
  }

  async task(id: string): Promise<TaskView> {
    const res = await this.call(`/api/tasks/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw new Error(`GET /api/tasks/${id} answered ${res.status}`);
    return taskViewSchema.parse(res.body);
  }

  async tasks(ids: readonly string[]): Promise<TaskView[]> {
    return Promise.all(ids.map((id) => this.task(id)));
  }

  async workers(): Promise<WorkerView[]> {
    const res = await this.call('/api/workers');
    if (res.status !== 200) throw new Error(`GET /api/workers answered ${res.status}`);
    return workersSchema.parse(res.body).workers;
  }

  /** Worker id → state, as the master sees it now. */
  async workerStates(): Promise<Record<string, WorkerView['state']>> {
    return Object.fromEntries((await this.workers()).map((w) => [w.id, w.state]));
  }
}

/** True once the broker at `url` accepts these credentials. */
export async function brokerAccepts(
  url: string,
  username: string,
  password: string,
  clientId?: string,
) {
  const client = mqtt.connect(url, {
    clientId,
    username,
    password,
    reconnectPeriod: 0,
    connectTimeout: 1_000,
  });
  try {
    return await new Promise<boolean>((resolve) => {
      client.once('connect', () => resolve(true));
      client.once('error', () => resolve(false));
      client.once('close', () => resolve(false));
    });
  } finally {
    client.end(true);
  }
}

/** True once Redis at `url` (password included) answers PING. */
export async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
