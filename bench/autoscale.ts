/**
 * `npm run bench:autoscale`: what autoscaling buys. The same burst of echo
 * tasks runs three times, each on a fresh master: on a fleet fixed at
 * --min workers, on one fixed at --max, and on a pool the autoscaler grows
 * from --min (in this process, with the local driver, as `flota up
 * --autoscale` runs it). Then it reports makespan, task latency,
 * worker-seconds, how fast the pool grew and shrank, and the ratios between
 * the runs. Progress on stderr, a table on stdout, JSON in bench/results/.
 */
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { z } from 'zod';
import {
  buildAutoscaleReport,
  formatAutoscaleTable,
  writeAutoscaleReport,
} from './autoscale-report.ts';
import {
  type AutoscaleParams,
  RUN_KINDS,
  type RunKind,
  type RunResult,
  runOnce,
} from './autoscale-run.ts';
import { Cleanup } from './cleanup.ts';
import { parseFlags } from './flags.ts';
import { Progress } from './progress.ts';
import { startRedisServer } from './system.ts';

const DEFAULT_RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);
const optionsSchema = z
  .object({
    tasks: int(1, 100_000),
    taskMs: int(0, 600_000),
    slots: int(1, 1024),
    min: int(1, 64),
    max: int(2, 64),
    intervalMs: int(200, 600_000),
    cooldownUpMs: int(0, 3_600_000),
    cooldownDownMs: int(0, 3_600_000),
    stepUp: int(1, 64),
    stepDown: int(1, 64),
    sessions: int(1, 64),
    sampleMs: int(50, 10_000),
    scaleDownTimeoutMs: int(1_000, 3_600_000),
    stallMs: int(1_000, 3_600_000),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    json: z.string().min(1).optional(),
    resultsDir: z.string().min(1),
    quiet: z.boolean(),
  })
  .refine((o) => o.max > o.min, { message: 'must be above --min', path: ['max'] });

const program = new Command()
  .name('bench:autoscale')
  .description('what autoscaling buys: one burst on min workers, on max workers, and autoscaled')
  .option('--tasks <n>', 'echo tasks submitted at once', '120')
  .option('--task-ms <ms>', "each task's time on a slot (the workers' ECHO_DELAY_MS)", '400')
  .option('--slots <n>', 'slots per worker (SLOTS)', '2')
  .option('--min <n>', 'workers of the fixed-min run; the autoscaled pool starts here', '1')
  .option('--max <n>', 'workers of the fixed-max run; the autoscaled pool stops here', '4')
  .option('--interval-ms <ms>', 'AUTOSCALE_INTERVAL_MS', '500')
  .option('--cooldown-up-ms <ms>', 'AUTOSCALE_COOLDOWN_UP_MS', '2000')
  .option('--cooldown-down-ms <ms>', 'AUTOSCALE_COOLDOWN_DOWN_MS', '3000')
  .option('--step-up <n>', 'AUTOSCALE_STEP_UP', '2')
  .option('--step-down <n>', 'AUTOSCALE_STEP_DOWN', '1')
  .option('--sessions <n>', 'Socket.IO sessions the results arrive on', '4')
  .option('--sample-ms <ms>', 'how often GET /api/workers is sampled', '250')
  .option(
    '--scale-down-timeout-ms <ms>',
    'how long to watch the autoscaled pool shrink back to --min after the burst',
    '60000',
  )
  .option('--stall-ms <ms>', 'fail a run when no task finishes for this long', '30000')
  .option('--log-level <level>', 'LOG_LEVEL of the master, the workers and the autoscaler', 'warn')
  .option('--json <path>', 'also write the JSON report to <path>')
  .option(
    '--results-dir <dir>',
    'where autoscale-<timestamp>.json and autoscale-latest.json go',
    DEFAULT_RESULTS,
  )
  .option('--quiet', 'no progress output', false)
  .showHelpAfterError();

const { json, resultsDir, quiet, ...params } = parseFlags(program, optionsSchema);
const benchParams: AutoscaleParams = params;

const startedAt = new Date();
const progress = new Progress(process.stderr, quiet);
const cleanup = new Cleanup();
cleanup.installSignalHandlers((signal) => progress.note(`${signal}: stopping every process`));

try {
  progress.note('starting redis-server');
  const redis = await startRedisServer(cleanup);
  const runs: Partial<Record<RunKind, RunResult>> = {};
  for (const kind of RUN_KINDS) {
    runs[kind] = await runOnce(kind, redis.url, benchParams, cleanup, progress);
  }
  await cleanup.run();

  const report = buildAutoscaleReport(benchParams, runs as Record<RunKind, RunResult>, startedAt);
  const files = writeAutoscaleReport(report, resultsDir, json);
  console.log(formatAutoscaleTable(report));
  progress.note(`written: ${files.join(', ')}`);
  const failed = Object.values(report.runs).reduce((sum, r) => sum + r.failed, 0);
  if (failed > 0) console.error(`${failed} tasks failed`);
  process.exit(failed === 0 ? 0 : 1);
} catch (err) {
  // After Ctrl-C, runs fail because their processes are going away: not worth a report.
  if (!cleanup.interrupted) {
    console.error(
      `bench:autoscale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  }
  await cleanup.run();
  process.exit(cleanup.interrupted ? 130 : 1);
}
