/** `flota submit` and `flota workers`: thin clients of the REST API. */
import type { TaskView } from '../proto/src/schemas/task.ts';
import type { WorkerView } from '../proto/src/schemas/worker.ts';

export interface SubmitOptions {
  url: string;
  model?: string;
  gpu: boolean;
  priority?: number;
  wait: boolean;
  json: boolean;
}

async function api<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', ...init?.headers },
  });
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new Error(`${res.status} ${body.error ?? res.statusText}`);
  return body;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export async function submitCommand(prompt: string, opts: SubmitOptions): Promise<number> {
  const base = opts.url.replace(/\/+$/, '');
  const { id } = await api<{ id: string }>(`${base}/api/tasks`, {
    method: 'POST',
    body: JSON.stringify({
      prompt,
      model: opts.model,
      priority: opts.priority,
      requires: opts.gpu ? { gpu: true } : undefined,
    }),
  });
  if (!opts.wait) {
    console.log(id);
    return 0;
  }
  let task: TaskView;
  for (;;) {
    task = await api<TaskView>(`${base}/api/tasks/${encodeURIComponent(id)}`);
    if (TERMINAL.has(task.state)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (opts.json) console.log(JSON.stringify(task, null, 2));
  else if (task.state === 'completed') {
    console.log(task.result);
    const t = task.timings;
    console.error(
      `— ${task.workerId} (${task.workerKind}) · ${task.model} · queued ${t.queueMs} ms · processing ${t.processingMs} ms · total ${t.totalMs} ms`,
    );
  } else console.error(`task ${task.state}: ${task.error ?? ''}`);
  return task.state === 'completed' ? 0 : 1;
}

export async function workersCommand(opts: { url: string; json: boolean }): Promise<number> {
  const { workers } = await api<{ workers: WorkerView[] }>(
    `${opts.url.replace(/\/+$/, '')}/api/workers`,
  );
  if (opts.json) {
    console.log(JSON.stringify(workers, null, 2));
    return 0;
  }
  if (workers.length === 0) {
    console.log('no workers');
    return 0;
  }
  const rows = workers.map((w) => ({
    id: w.id,
    kind: w.kind,
    state: w.state,
    slots: `${w.active}/${w.slots}`,
    cpu: w.cpuPct === undefined ? '-' : `${w.cpuPct.toFixed(0)}%`,
    mem: w.memPct === undefined ? '-' : `${w.memPct.toFixed(0)}%`,
    models: w.models.join(','),
    host: w.host,
  }));
  console.table(rows);
  return 0;
}
