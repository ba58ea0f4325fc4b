/**
 * `npm run bench`: the system as processes (Redis store; Mosquitto, then the
 * embedded broker), K echo workers, load through the public API (Socket.IO
 * and REST), the raw BullMQ floor on the same Redis, and 1,000 simulated
 * workers heartbeating while tasks flow. Progress on stderr, a table on
 * stdout, JSON in bench/results/. `npm run bench -- --help` lists the flags.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { z } from 'zod';
import { Cleanup } from './cleanup.ts';
import { parseFlags } from './flags.ts';
import { useCompiledBuild } from './processes.ts';
import { summarizeProfiles } from './profile-summary.ts';
import { Progress } from './progress.ts';
import { runRawBullmq } from './raw-bullmq.ts';
import { buildReport, formatTable, writeReport } from './report.ts';
import { type BenchParams, type BrokerResult, runBroker } from './scenario.ts';
import { startRedisServer } from './system.ts';

const DEFAULT_RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const int = (min: number) => z.coerce.number().int().min(min);
const optionsSchema = z.object({
  tasks: int(1),
  latencyTasks: int(1),
  soloTasks: int(1),
  warmup: int(1),
  workers: int(1),
  slots: int(1).max(1024),
  sessions: int(1).max(256),
  inflight: int(1),
  restShare: z.coerce.number().min(0).max(1),
  restBatch: int(1),
  registrationSamples: int(1),
  simWorkers: int(0).max(20_000),
  simConnectRate: int(1),
  simSeconds: z.coerce.number().min(0),
  simHeartbeatMs: int(50).max(60_000),
  simWorkersLarge: int(0).max(20_000),
  simIdleSeconds: z.coerce.number().min(0),
  streams: int(0).max(100_000),
  streamTokens: int(2).max(20_000),
  streamTokenMs: int(1).max(10_000),
  streamSeconds: z.coerce.number().positive(),
  streamSessions: int(1).max(1_000),
  streamWorkers: int(1).max(64),
  chunkCoalesceMs: int(0).max(1_000).optional(),
  rawJobs: int(1),
  rawBatch: int(1),
  rawRuns: int(1),
  rawConcurrency: int(1).optional(),
  broker: z.enum(['mosquitto', 'embedded', 'both']),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  dispatchPolicy: z.string().min(1).optional(),
  latencyRate: z.coerce.number().positive().optional(),
  stallMs: int(1_000),
  cpuProf: z.string().min(1).optional(),
  fromSource: z.boolean(),
  profile: z.boolean(),
  json: z.string().min(1).optional(),
  resultsDir: z.string().min(1),
  quiet: z.boolean(),
});

const program = new Command()
  .name('bench')
  .description('flota end-to-end benchmark: processes, Redis, Mosquitto and the embedded broker')
  .option('--tasks <n>', 'tasks per throughput run', '2000')
  .option('--latency-tasks <n>', 'latency samples at half the measured maximum', '500')
  .option('--solo-tasks <n>', 'tasks sent one at a time, for the latency of a task alone', '200')
  .option('--warmup <n>', 'warm-up tasks before measuring (the master JIT-warms slowly)', '1000')
  .option('--workers <n>', 'echo worker processes', '4')
  .option('--slots <n>', 'slots per echo worker', '16')
  .option('--sessions <n>', 'Socket.IO sessions submitting', '8')
  .option('--inflight <n>', 'tasks outstanding at once in a throughput run', '256')
  .option('--rest-share <0..1>', 'share of submissions sent over REST', '0.5')
  .option(
    '--rest-batch <n>',
    'REST submissions of a session in one turn go as one POST /api/tasks/batch of up to n (1: one request each)',
    '1',
  )
  .option('--latency-rate <n>', 'offered tasks/s in the latency run (default: half the max)')
  .option('--registration-samples <n>', 'single-worker registrations to time (median)', '1')
  .option('--sim-workers <n>', 'simulated workers in the scale scenario (0 = skip)', '1000')
  .option('--sim-connect-rate <n>', 'simulated workers connecting per second', '250')
  .option(
    '--sim-seconds <s>',
    'seconds tasks flow just before the sims connect, and again with them online',
    '6',
  )
  .option('--sim-heartbeat-ms <ms>', 'heartbeat period of the simulated workers', '1000')
  .option(
    '--sim-workers-large <n>',
    'a second scale step with this many simulated workers, e.g. 10000 (0 = skip)',
    '0',
  )
  .option(
    '--sim-idle-seconds <s>',
    'seconds with no task flowing, before and with the sims, that price their heartbeats (0 = skip)',
    '3',
  )
  .option('--streams <n>', 'answers streamed at once, token by token (0 = skip)', '500')
  .option('--stream-tokens <n>', 'tokens per streamed answer', '500')
  .option('--stream-token-ms <ms>', "the stream workers' time between tokens", '3')
  .option('--stream-seconds <s>', 'how long the streaming is measured', '8')
  .option('--stream-sessions <n>', 'Socket.IO sessions the streams go to', '50')
  .option('--stream-workers <n>', 'echo workers serving the streams', '4')
  .option(
    '--chunk-coalesce-ms <ms>',
    "the stream workers' CHUNK_COALESCE_MS (default: the worker's own)",
  )
  .option('--raw-jobs <n>', 'jobs per raw BullMQ run', '5000')
  .option('--raw-runs <n>', 'raw BullMQ runs (the median counts)', '3')
  .option('--raw-batch <n>', 'jobs per Queue.addBulk call', '100')
  .option('--raw-concurrency <n>', 'raw BullMQ worker concurrency (default: workers × slots)')
  .option('--broker <kind>', 'mosquitto | embedded | both', 'both')
  .option('--log-level <level>', 'LOG_LEVEL of the master and the echo workers', 'warn')
  .option('--dispatch-policy <name>', "the master's DISPATCH_POLICY (default: its own)")
  .option('--stall-ms <ms>', 'fail a run when no result arrives for this long', '30000')
  .option(
    '--cpu-prof <dir>',
    'run the master and echo workers with node --cpu-prof, profiles into <dir>',
  )
  .option(
    '--profile',
    'profile the master and the echo workers, then print where their CPU time went (profiles in <results-dir>/profiles-<time>, or --cpu-prof <dir>)',
    false,
  )
  .option(
    '--from-source',
    'run flota through tsx from the TypeScript sources instead of building and running dist/',
    false,
  )
  .option('--json <path>', 'also write the JSON report to <path>')
  .option(
    '--results-dir <dir>',
    'where <timestamp>-<commit>.json and latest.json go',
    DEFAULT_RESULTS,
  )
  .option('--quiet', 'no progress output', false)
  .showHelpAfterError();

const opts = parseFlags(program, optionsSchema);
const brokers = opts.broker === 'both' ? (['mosquitto', 'embedded'] as const) : [opts.broker];
const params: BenchParams & { brokers: string[]; build: string } = {
  tasks: opts.tasks,
  latencyTasks: opts.latencyTasks,
  soloTasks: opts.soloTasks,
  latencyRate: opts.latencyRate,
  warmupTasks: opts.warmup,
  workers: opts.workers,
  slots: opts.slots,
  sessions: opts.sessions,
  inflight: opts.inflight,
  restShare: opts.restShare,
  restBatch: opts.restBatch,
  registrationSamples: opts.registrationSamples,
  simWorkers: opts.simWorkers,
  simConnectRate: opts.simConnectRate,
  simSeconds: opts.simSeconds,
  simHeartbeatMs: opts.simHeartbeatMs,
  simWorkersLarge: opts.simWorkersLarge,
  simIdleSeconds: opts.simIdleSeconds,
  stream: {
    streams: opts.streams,
    tokens: opts.streamTokens,
    tokenMs: opts.streamTokenMs,
    seconds: opts.streamSeconds,
    sessions: opts.streamSessions,
    workers: opts.streamWorkers,
    coalesceMs: opts.chunkCoalesceMs,
  },
  rawJobs: opts.rawJobs,
  rawRuns: opts.rawRuns,
  rawBatch: opts.rawBatch,
  rawConcurrency: opts.rawConcurrency ?? opts.workers * opts.slots,
  logLevel: opts.logLevel,
  dispatchPolicy: opts.dispatchPolicy,
  stallMs: opts.stallMs,
  cpuProf:
    opts.cpuProf ??
    (opts.profile
      ? join(opts.resultsDir, `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`)
      : undefined),
  brokers: [...brokers],
  build: opts.fromSource ? 'source (tsx)' : 'compiled (dist/)',
};

const startedAt = new Date();
const progress = new Progress(process.stderr, opts.quiet);
const cleanup = new Cleanup();
cleanup.installSignalHandlers((signal) => progress.note(`${signal}: stopping every process`));

try {
  if (!opts.fromSource) {
    progress.note('building dist/ (npm run build)');
    await useCompiledBuild();
  }
  progress.note('starting redis-server');
  const redis = await startRedisServer(cleanup);

  const rawBar = progress.bar('raw BullMQ floor', params.rawJobs * params.rawRuns);
  const raw = await runRawBullmq({
    redisUrl: redis.url,
    jobs: params.rawJobs,
    concurrency: params.rawConcurrency,
    batch: params.rawBatch,
    runs: params.rawRuns,
    onProgress: (d) => rawBar.update(d),
  });
  rawBar.finish(`${Math.round(raw.jobsPerSec)} jobs/s`);

  const runs: BrokerResult[] = [];
  for (const broker of brokers) {
    runs.push(await runBroker(broker, redis.url, params, cleanup, progress));
  }
  await cleanup.run();

  const report = buildReport(params, raw, runs, startedAt);
  const files = writeReport(report, opts.resultsDir, opts.json);
  console.log(formatTable(report));
  progress.note(`written: ${files.join(', ')}`);
  if (opts.profile && params.cpuProf) {
    const processes = runs.flatMap((r) => r.profiled ?? []);
    const { text } = await summarizeProfiles(params.cpuProf, processes);
    console.log(`\nwhere the CPU time went (${params.cpuProf}/summary.txt):\n\n${text}`);
  }
  const failed = runs.reduce((sum, r) => sum + r.failed, 0);
  if (failed > 0) console.error(`${failed} tasks failed`);
  process.exit(failed === 0 ? 0 : 1);
} catch (err) {
  // After Ctrl-C, runs fail because their processes are going away: not worth a report.
  if (!cleanup.interrupted) {
    console.error(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  }
  await cleanup.run();
  process.exit(cleanup.interrupted ? 130 : 1);
}
