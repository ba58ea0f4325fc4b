/**
 * `flota submit` and `flota workers`: thin clients of the REST API. Options
 * are checked before anything is sent: commander reads each one (a number
 * must be an integer, a label `key=value`), zod checks them against the
 * bounds the master applies (proto/src/schemas/task.ts), so a bad option
 * fails here with its flag named instead of as a 400 from the master.
 */
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { IDEMPOTENCY_HEADER } from '../proto/src/http-api.ts';
import {
  requirementsSchema,
  submitTaskFields,
  submitTaskSchema,
  type TaskView,
} from '../proto/src/schemas/task.ts';
import type { WorkerView } from '../proto/src/schemas/worker.ts';
import {
  api,
  baseOf,
  type ClientOptions,
  check,
  clientSchema,
  tokenOption,
  urlOption,
} from './master-api.ts';

export interface SubmitOptions extends ClientOptions {
  model?: string;
  gpu: boolean;
  priority?: number;
  /** Submit→finish budget in ms (queued time included). */
  timeoutMs?: number;
  /** false (`--no-cache`): no answer from the result cache, and this one is not kept. */
  cache?: boolean;
  /** Labels a worker must carry (`--label k=v`, repeatable). */
  label?: Record<string, string>;
  idempotencyKey?: string;
  wait: boolean;
}

const submitOptionsSchema = clientSchema.extend({
  model: submitTaskFields.shape.model,
  priority: submitTaskFields.shape.priority,
  timeoutMs: submitTaskFields.shape.timeoutMs,
  label: requirementsSchema.shape.labels,
  // The master's bound for the Idempotency-Key header (master/src/http/app.ts).
  idempotencyKey: z.string().min(1).max(128).optional(),
});

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export async function submitCommand(prompt: string, opts: SubmitOptions): Promise<number> {
  const checked = check(submitOptionsSchema, opts);
  const requires = {
    ...(opts.gpu ? { gpu: true } : {}),
    ...(checked.label && Object.keys(checked.label).length > 0 ? { labels: checked.label } : {}),
  };
  const body = check(submitTaskSchema, {
    prompt,
    model: checked.model,
    priority: checked.priority,
    timeoutMs: checked.timeoutMs,
    requires: Object.keys(requires).length > 0 ? requires : undefined,
    cache: opts.cache === false ? false : undefined,
  });
  const base = baseOf(checked.url);
  const { id } = await api<{ id: string }>(`${base}/api/tasks`, checked.token, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: checked.idempotencyKey ? { [IDEMPOTENCY_HEADER]: checked.idempotencyKey } : {},
  });
  if (!opts.wait) {
    console.log(opts.json ? JSON.stringify({ id }) : id);
    return 0;
  }
  let task: TaskView;
  for (;;) {
    task = await api<TaskView>(`${base}/api/tasks/${encodeURIComponent(id)}`, checked.token);
    if (TERMINAL.has(task.state)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (opts.json) console.log(JSON.stringify(task, null, 2));
  else if (task.state === 'completed') {
    console.log(task.result);
    const t = task.timings;
    const who = task.cache ? 'result cache' : `${task.workerId} (${task.workerKind})`;
    console.error(
      `— ${who} · ${task.model} · priority ${task.priority} · queued ${t.queueMs} ms · processing ${t.processingMs} ms · total ${t.totalMs} ms`,
    );
  } else console.error(`task ${task.state}: ${task.error ?? ''}`);
  return task.state === 'completed' ? 0 : 1;
}

export async function workersCommand(opts: ClientOptions): Promise<number> {
  const checked = check(clientSchema, opts);
  const { workers } = await api<{ workers: WorkerView[] }>(
    `${baseOf(checked.url)}/api/workers`,
    checked.token,
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

/** A whole number as typed; its range is zod's to check. */
export function integer(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a whole number.');
  return Number(value);
}

/** One `--label key=value`, added to those before it. */
export function label(
  value: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value, e.g. --label region=eu.');
  const key = value.slice(0, eq).trim();
  const text = value.slice(eq + 1).trim();
  if (Object.hasOwn(previous, key) && previous[key] !== text) {
    throw new InvalidArgumentError(`label "${key}" is given twice with different values.`);
  }
  return { ...previous, [key]: text };
}

/**
 * The `submit` and `workers` commands, ready for `program.addCommand`. (A
 * command added that way does not inherit the program's settings, so each
 * sets its own.)
 */
export function clientCommands(): Command[] {
  const submit = new Command('submit')
    .description('submit a prompt through the REST API and wait for the answer')
    .argument('<prompt...>', 'the prompt text')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('-m, --model <model>', 'model to use (default: the first one online)')
    .option('--gpu', 'require a GPU worker', false)
    .option('-p, --priority <n>', 'priority 0-1000, higher runs first (default 0)', integer)
    .option(
      '--timeout-ms <n>',
      'give up this many ms after submitting (queued time included)',
      integer,
    )
    .option('--no-cache', 'always run it: no answer from the result cache, and keep none')
    .option('--label <key=value>', 'only a worker with this label; repeatable', label)
    .option('--idempotency-key <key>', 'a retry with the same key names the same task')
    .option('--no-wait', 'print the task id and return at once')
    .option('--json', 'print the final task as JSON', false)
    .showHelpAfterError('(flota submit --help lists the options)')
    .action(async (words: string[], opts: SubmitOptions) => {
      process.exitCode = await submitCommand(words.join(' '), opts);
    });
  const workers = new Command('workers')
    .description('list the workers the master knows')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--json', 'print JSON', false)
    .showHelpAfterError('(flota workers --help lists the options)')
    .action(async (opts: ClientOptions) => {
      process.exitCode = await workersCommand(opts);
    })
    // `flota workers drain ID --url …`: options after a subcommand are the subcommand's.
    .enablePositionalOptions();
  return [submit, workers];
}
