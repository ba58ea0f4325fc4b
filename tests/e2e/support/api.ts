/** Talks to a running master over its REST API, the way `flota submit` or curl would. */
import { type TaskView, taskViewSchema } from '../../../proto/src/schemas/task.ts';
import { type WorkerView, workerViewSchema } from '../../../proto/src/schemas/worker.ts';
import { waitFor } from '../../helpers/wait-for.ts';

export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** `POST /api/tasks`; asserts the 202 and returns the new task id. */
export async function submitTask(baseUrl: string, prompt: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await res.json()) as { id?: unknown };
  if (res.status !== 202 || typeof body.id !== 'string') {
    throw new Error(`POST /api/tasks answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body.id;
}

export async function getTask(baseUrl: string, id: string): Promise<TaskView> {
  const { status, body } = await getJson(`${baseUrl}/api/tasks/${encodeURIComponent(id)}`);
  if (status !== 200) throw new Error(`GET /api/tasks/${id} answered ${status}`);
  return taskViewSchema.parse(body);
}

/** Polls `GET /api/tasks/:id` until the task is finished; fails fast on failed/cancelled. */
export async function waitForCompleted(
  baseUrl: string,
  id: string,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<TaskView> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let last: TaskView | undefined;
  const view = await waitFor(
    async () => {
      last = await getTask(baseUrl, id);
      return last.state === 'queued' || last.state === 'running' ? undefined : last;
    },
    { timeoutMs, intervalMs: opts.intervalMs ?? 25, what: `task ${id}` },
  ).catch((err: unknown) => {
    if (!last) throw err;
    throw new Error(
      `task ${id} still ${last.state} after ${timeoutMs} ms: ${JSON.stringify(last)}`,
      { cause: err },
    );
  });
  if (view.state !== 'completed') {
    throw new Error(`task ${id} ended ${view.state}: ${view.error ?? JSON.stringify(view)}`);
  }
  return view;
}

export async function listWorkers(baseUrl: string): Promise<WorkerView[]> {
  const { status, body } = await getJson(`${baseUrl}/api/workers`);
  if (status !== 200) throw new Error(`GET /api/workers answered ${status}`);
  return workerViewSchema.array().parse((body as { workers: unknown }).workers);
}

/**
 * Waits until `/readyz` says ready and every id in `workerIds` is listed
 * online. `isDead` names why waiting is pointless (the process exited), so a
 * crash fails at once with that reason instead of after the timeout.
 */
export async function waitForSystem(
  baseUrl: string,
  workerIds: string[],
  isDead: () => string | undefined,
  timeoutMs = 60_000,
): Promise<WorkerView[]> {
  const outcome = await waitFor(
    async (): Promise<{ dead: string } | { workers: WorkerView[] } | undefined> => {
      const dead = isDead();
      if (dead) return { dead };
      if ((await getJson(`${baseUrl}/readyz`)).status !== 200) return undefined;
      const workers = await listWorkers(baseUrl);
      const online = new Set(workers.filter((w) => w.state === 'online').map((w) => w.id));
      return workerIds.every((id) => online.has(id)) ? { workers } : undefined;
    },
    {
      timeoutMs,
      intervalMs: 100,
      what: `${baseUrl}/readyz and workers ${workerIds.join(', ')} online`,
    },
  );
  if ('dead' in outcome) throw new Error(outcome.dead);
  return outcome.workers;
}
