/**
 * Proves `npm run bench:autoscale` still runs end to end: the benchmark as a
 * process with tiny parameters (a pool of 1–2 workers, short cooldowns), a
 * JSON report with its three runs, every task completed, an autoscaled pool
 * that grew to max and shrank back to min, and no process left behind.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitFor } from '../helpers/wait-for.ts';
import { type BenchRun, runBenchScript, stopBench } from './support/bench.ts';
import { REPO_ROOT } from './support/flota-process.ts';
import { leftoverProcesses, type ProcessInfo, processesMentioning } from './support/proc-scan.ts';

const TASKS = 32;
const positive = z.number().positive();
const percentiles = z.object({ p50: positive, p95: positive, p99: positive, max: positive });
const run = (name: string) =>
  z
    .object({
      run: z.literal(name),
      tasks: z.literal(TASKS),
      completed: z.literal(TASKS),
      failed: z.literal(0),
      makespanMs: positive,
      tasksPerSec: positive,
      taskTotalMs: percentiles,
      workerSeconds: positive,
      peakOnline: positive,
    })
    .loose();
const fixedRun = (name: string, workers: number) =>
  run(name).extend({ workersAtStart: z.literal(workers), autoscale: z.null() });
const reportSchema = z.object({
  commit: z.string().min(1),
  parameters: z.object({ tasks: z.literal(TASKS), min: z.literal(1), max: z.literal(2) }).loose(),
  ratios: z.object({
    makespanVsFixedMin: positive,
    makespanVsFixedMax: positive,
    workerSecondsVsFixedMax: positive,
  }),
  runs: z.object({
    'fixed-min': fixedRun('fixed-min', 1),
    'fixed-max': fixedRun('fixed-max', 2),
    autoscaled: run('autoscaled').extend({
      workersAtStart: z.literal(1),
      autoscale: z
        .object({
          firstScaleUpMs: positive,
          maxOnlineMs: positive,
          reachedMax: z.literal(true),
          backToMinMs: z.number().nonnegative(),
          reachedMin: z.literal(true),
          scalings: z.array(z.object({ atMs: z.number(), from: z.number(), to: z.number() })),
        })
        .loose(),
    }),
  }),
});

let dir: string;
let bench: BenchRun | undefined;

/**
 * The benchmark's master and workers inherit BENCH_SMOKE_DIR (bench/config.ts
 * keeps variables flota does not read), so a scan of /proc finds any left
 * behind. redis-server rewrites its environment for its process title; it is
 * found by its working directory instead, a temporary directory of the
 * benchmark's (TMPDIR points into `dir`).
 */
async function leftoverRedis(): Promise<ProcessInfo[]> {
  const ours = async () => {
    const found: ProcessInfo[] = [];
    for (const p of await processesMentioning('redis-server')) {
      const cwd = await readlink(`/proc/${p.pid}/cwd`).catch(() => '');
      if (p.cmdline.startsWith('redis-server') && cwd.startsWith(dir)) found.push(p);
    }
    return found;
  };
  let left: ProcessInfo[] = [];
  await waitFor(
    async () => {
      left = await ours();
      return left.length === 0;
    },
    { timeoutMs: 5_000, intervalMs: 50, what: "the benchmark's redis-server to be gone" },
  ).catch(() => undefined);
  return left;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-bench-autoscale-smoke-'));
});

afterAll(async () => {
  stopBench(bench);
  await rm(dir, { recursive: true, force: true });
});

describe('npm run bench:autoscale', () => {
  it('is the package script', async () => {
    const pkg = z
      .object({ scripts: z.record(z.string(), z.string()) })
      .parse(JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')));
    expect(pkg.scripts['bench:autoscale']).toBe('node --import tsx bench/autoscale.ts');
  });

  it('runs with tiny parameters, grows and shrinks the pool, and leaves nothing behind', async () => {
    const jsonPath = join(dir, 'out', 'report.json');
    const resultsDir = join(dir, 'results');
    bench = runBenchScript(
      'bench/autoscale.ts',
      [
        `--tasks=${TASKS}`,
        '--task-ms=300',
        '--slots=2',
        '--min=1',
        '--max=2',
        '--interval-ms=200',
        '--cooldown-up-ms=500',
        '--cooldown-down-ms=1000',
        '--scale-down-timeout-ms=15000',
        '--stall-ms=15000',
        `--results-dir=${resultsDir}`,
        `--json=${jsonPath}`,
      ],
      { ...process.env, BENCH_SMOKE_DIR: dir, TMPDIR: dir },
    );
    const result = await bench.done;
    expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
    expect(result.stdout).toContain('makespan, first submit → last result (s)');
    expect(result.stdout).toContain('autoscaled ÷ fixed-max worker-seconds');
    expect(result.stderr).toContain('written:');

    const report = reportSchema.parse(JSON.parse(await readFile(jsonPath, 'utf8')));
    const { autoscale } = report.runs.autoscaled;
    expect(autoscale.scalings.some((s) => s.to > s.from)).toBe(true);
    expect(autoscale.scalings.some((s) => s.to < s.from)).toBe(true);
    expect(report.ratios.makespanVsFixedMin).toBeCloseTo(
      report.runs.autoscaled.makespanMs / report.runs['fixed-min'].makespanMs,
      1,
    );
    expect(existsSync(join(resultsDir, 'autoscale-latest.json'))).toBe(true);
    expect(await leftoverProcesses(dir)).toEqual([]);
    expect(await leftoverRedis()).toEqual([]);
  }, 60_000);
});
