/**
 * `npm run bench:console`: how fast the operator console answers on a busy
 * fleet. A master (Redis store, embedded broker) with echo workers runs
 * --tasks real tasks (so the task history holds them), --sim-workers
 * simulated workers join and heartbeat, and then every request the console
 * makes is timed, one after another, --samples times each: the task table
 * (no filter, each filter, a prompt search, a page deep in the cursor, the
 * CSV export), a task's timeline, usage, workers, alerts, the live series,
 * the page itself, and the console socket's first snapshot. Goal: each p95
 * within 100 ms. Progress on stderr, a table on stdout, JSON in bench/results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { io } from 'socket.io-client';
import { z } from 'zod';
import { CONSOLE_EVENTS, CONSOLE_NAMESPACE } from '../proto/src/console-events.ts';
import { Cleanup } from './cleanup.ts';
import { parseFlags } from './flags.ts';
import { useCompiledBuild } from './processes.ts';
import { Progress } from './progress.ts';
import { simIds, startSwarm } from './swarm.ts';
import {
  spawnWorker,
  startMasterProcess,
  startRedisServer,
  tempDir,
  waitForOnline,
  workerCredential,
  workerCredentials,
} from './system.ts';

const DEFAULT_RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
/** What the console must answer within, p95. */
const GOAL_MS = 100;
/** Words the prompts are made of, so a search finds some tasks and not others. */
const WORDS = ['queue', 'lease', 'fencing', 'heartbeat', 'gossip', 'quorum', 'raft', 'paxos'];

const int = (min: number, max = 1_000_000) => z.coerce.number().int().min(min).max(max);
const optionsSchema = z.object({
  tasks: int(1),
  workers: int(1, 64),
  slots: int(1, 1024),
  inflight: int(1, 4096),
  simWorkers: int(0, 20_000),
  samples: int(1, 10_000),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  resultsDir: z.string().min(1),
  quiet: z.boolean(),
});
type Options = z.infer<typeof optionsSchema>;

const program = new Command()
  .name('bench:console')
  .description('the operator console on a busy fleet: every request it makes, timed')
  .option('--tasks <n>', 'tasks run (and kept in the history) before measuring', '10000')
  .option('--workers <n>', 'echo worker processes running them', '2')
  .option('--slots <n>', 'slots per echo worker', '32')
  .option('--inflight <n>', 'tasks submitted and not yet finished, at most', '256')
  .option('--sim-workers <n>', 'simulated workers online while measuring', '200')
  .option('--samples <n>', 'times each request is timed', '30')
  .option('--log-level <level>', "flota processes' log level", 'warn')
  .option('--results-dir <dir>', 'where the JSON report goes', DEFAULT_RESULTS)
  .option('--quiet', 'no progress on stderr', false);

interface Timing {
  what: string;
  p50: number;
  p95: number;
  max: number;
  /** Bytes of the last answer. */
  bytes: number;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

/** Times `once` `samples` times (after two untimed warm-ups); each returns the answer's size. */
async function timed(what: string, samples: number, once: () => Promise<number>): Promise<Timing> {
  for (let i = 0; i < 2; i++) await once();
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    bytes = await once();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  return { what, p50: pct(ms, 0.5), p95: pct(ms, 0.95), max: ms.at(-1) as number, bytes };
}

/** GET `path`; fails unless 200; the body's size. */
async function get(baseUrl: string, path: string): Promise<{ text: string; bytes: number }> {
  const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 200)}`);
  return { text, bytes: Buffer.byteLength(text) };
}

const submitted = z.object({ id: z.string() });
const taskState = z.object({ state: z.string() });
const page = z.object({
  tasks: z.array(z.object({ id: z.string(), workerId: z.string().optional() })),
  nextCursor: z.string().optional(),
});

/** Runs `count` tasks through the REST API, at most `inflight` unfinished at once. */
async function runTasks(
  baseUrl: string,
  opts: Options,
  onDone: (done: number) => void,
): Promise<void> {
  let next = 0;
  let done = 0;
  const one = async (i: number) => {
    const prompt = `task ${i}: tell me about ${WORDS[i % WORDS.length]} number ${i}`;
    const res = await fetch(`${baseUrl}/api/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt, model: 'echo', cache: false }),
    });
    if (res.status !== 202) throw new Error(`submit: ${res.status} ${await res.text()}`);
    const { id } = submitted.parse(await res.json());
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      const view = taskState.parse(await (await fetch(`${baseUrl}/api/tasks/${id}`)).json());
      if (view.state !== 'queued' && view.state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    onDone(++done);
  };
  const lane = async () => {
    while (next < opts.tasks) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(opts.inflight, opts.tasks) }, lane));
}

/** Connect → the console namespace's first snapshot, in ms; the snapshot's size. */
async function consoleSnapshot(baseUrl: string): Promise<number> {
  const socket = io(`${baseUrl}${CONSOLE_NAMESPACE}`, {
    transports: ['websocket'],
    reconnection: false,
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no console snapshot in 10 s')), 10_000);
      socket.once(CONSOLE_EVENTS.state, (state: unknown) => {
        clearTimeout(timer);
        resolve(Buffer.byteLength(JSON.stringify(state)));
      });
      socket.once('connect_error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } finally {
    socket.close();
  }
}

async function main(): Promise<void> {
  const opts = parseFlags(program, optionsSchema);
  const progress = new Progress(process.stderr, opts.quiet);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers(() => progress.note('interrupted: cleaning up'));
  try {
    await useCompiledBuild();
    const redis = await startRedisServer(cleanup);
    const master = await startMasterProcess(cleanup, {
      redisUrl: redis.url,
      namespace: `cb${Date.now()}`,
      dataDir: await tempDir(cleanup, 'flota-bench-console-'),
      logLevel: opts.logLevel,
    });
    const ids = Array.from({ length: opts.workers }, (_, i) => `cb-worker-${i}`);
    for (const id of ids) {
      spawnWorker(cleanup, {
        id,
        credential: await workerCredential(master, id),
        mqttUrl: master.mqttUrl,
        grpcPort: master.grpcPort,
        slots: opts.slots,
        logLevel: opts.logLevel,
      });
    }
    await waitForOnline(master.baseUrl, (id) => id.startsWith('cb-worker-'), opts.workers, {
      timeoutMs: 60_000,
    });

    const bar = progress.bar('tasks into the history', opts.tasks);
    const seedStart = performance.now();
    await runTasks(master.baseUrl, opts, (done) => bar.update(done));
    const seedSeconds = (performance.now() - seedStart) / 1000;
    bar.finish(`${Math.round(opts.tasks / seedSeconds)} tasks/s`);

    if (opts.simWorkers > 0) {
      progress.note(`${opts.simWorkers} simulated workers joining`);
      startSwarm(cleanup, {
        mqttUrl: master.mqttUrl,
        credentials: await workerCredentials(master, simIds(opts.simWorkers)),
        connectPerSec: 250,
        heartbeatMs: 1_000,
        model: 'sim-model',
      });
      await waitForOnline(master.baseUrl, (id) => id.startsWith('sim-'), opts.simWorkers, {
        timeoutMs: 60_000 + opts.simWorkers * 20,
      });
    }

    // The history is written in batches: wait until it lists every task.
    const all = async () => {
      let count = 0;
      let cursor: string | undefined;
      do {
        const q = `/api/tasks?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const body = page.parse(JSON.parse((await get(master.baseUrl, q)).text));
        count += body.tasks.length;
        cursor = body.nextCursor;
      } while (cursor);
      return count;
    };
    for (let listed = await all(); listed < opts.tasks; listed = await all()) {
      progress.note(`the history lists ${listed} of ${opts.tasks} tasks; waiting`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    const base = master.baseUrl;
    const first = page.parse(JSON.parse((await get(base, '/api/tasks?limit=1')).text));
    const someTask = first.tasks[0];
    if (!someTask) throw new Error('the history is empty');
    // A page deep in the list: follow the cursor 10 pages of 50.
    let deep: string | undefined;
    for (let i = 0; i < 10; i++) {
      const q = `/api/tasks?limit=50${deep ? `&cursor=${encodeURIComponent(deep)}` : ''}`;
      deep = page.parse(JSON.parse((await get(base, q)).text)).nextCursor;
    }
    const hour = Date.now() - 3_600_000;
    const requests: Array<[string, string]> = [
      ['tasks: newest 50', '/api/tasks?limit=50'],
      ['tasks: state=completed', '/api/tasks?state=completed&limit=50'],
      ['tasks: state=failed (none)', '/api/tasks?state=failed&limit=50'],
      ['tasks: model=echo', '/api/tasks?model=echo&limit=50'],
      ['tasks: workerId', `/api/tasks?workerId=${ids[0]}&limit=50`],
      ['tasks: tenant=default', '/api/tasks?tenant=default&limit=50'],
      ['tasks: last hour', `/api/tasks?from=${hour}&limit=50`],
      ['tasks: search prompt text', '/api/tasks?q=paxos&limit=50'],
      ['tasks: search a task id', `/api/tasks?q=${someTask.id}&limit=50`],
      ['tasks: page 11 by cursor', `/api/tasks?limit=50&cursor=${encodeURIComponent(deep ?? '')}`],
      ['tasks: CSV export, 500', '/api/tasks?limit=500&format=csv'],
      ['task timeline', `/api/tasks/${someTask.id}/timeline`],
      ['usage: 24 h by tenant', '/api/usage'],
      ['usage: by tenant,model,worker', '/api/usage?groupBy=tenant,model,worker'],
      ['usage: by hour, CSV', '/api/usage?groupBy=hour&format=csv'],
      ['workers', '/api/workers'],
      ['models', '/api/models'],
      ['alerts', '/api/alerts'],
      ['series: the last hour', '/api/series'],
      ['audit', '/api/audit?limit=100'],
      ['fleet', '/api/fleet'],
      ['the console page', '/console'],
    ];
    const timings: Timing[] = [];
    const measureBar = progress.bar('console requests', requests.length + 1);
    for (const [what, path] of requests) {
      timings.push(await timed(what, opts.samples, async () => (await get(base, path)).bytes));
      measureBar.update(timings.length, what);
    }
    timings.push(
      await timed('console socket: connect → snapshot', opts.samples, () => consoleSnapshot(base)),
    );
    measureBar.finish();

    const report = {
      params: opts,
      goalMs: GOAL_MS,
      seedTasksPerSec: opts.tasks / seedSeconds,
      timings,
      at: new Date().toISOString(),
    };
    const over = timings.filter((t) => t.p95 > GOAL_MS);
    const ms = (v: number) => `${v.toFixed(1)}`.padStart(8);
    const lines = [
      `console on ${opts.tasks} stored tasks and ${opts.simWorkers + opts.workers} workers; ${opts.samples} samples each; goal p95 ≤ ${GOAL_MS} ms`,
      `${'request'.padEnd(36)}${'p50 ms'.padStart(8)}${'p95 ms'.padStart(8)}${'max ms'.padStart(8)}${'bytes'.padStart(10)}`,
      ...timings.map(
        (t) =>
          `${t.what.padEnd(36)}${ms(t.p50)}${ms(t.p95)}${ms(t.max)}${String(t.bytes).padStart(10)}${t.p95 > GOAL_MS ? '  over' : ''}`,
      ),
      over.length === 0
        ? `every request within ${GOAL_MS} ms at p95`
        : `${over.length} over ${GOAL_MS} ms at p95: ${over.map((t) => t.what).join('; ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await mkdir(opts.resultsDir, { recursive: true });
    const path = join(opts.resultsDir, `console-${Date.now()}.json`);
    await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
    progress.note(`report: ${path}`);
  } finally {
    await cleanup.run();
  }
}

await main();
