/**
 * Proves `npm run bench` still runs end to end: the benchmark as a process
 * with tiny parameters (Redis + Mosquitto only, 10 simulated workers), and a
 * JSON report with every key dashboards read, holding sane numbers.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BenchRun, runBenchScript, stopBench } from './support/bench.ts';

const positive = z.number().positive();
const reportSchema = z.object({
  commit: z.string().min(1),
  parameters: z.object({ tasks: z.literal(50), brokers: z.array(z.string()) }).loose(),
  throughputTasksPerSec: positive,
  rawBullmqJobsPerSec: positive,
  ratioToRawBullmq: positive,
  latencyMs: z.object({ p50: positive, p95: positive, p99: positive }),
  soloLatencyMs: z.object({ p50: positive, p99: positive }),
  registrationMs: positive,
  scale: z.object({ workers: z.literal(10), masterRssMb: positive, throughputDropPct: z.number() }),
  streams: z.object({
    streams: z.literal(8),
    tokensPerSec: positive,
    delayMs: z.object({ p50: z.number().nonnegative(), p99: z.number().nonnegative() }).loose(),
  }),
  runs: z.object({
    mosquitto: z
      .object({
        failed: z.literal(0),
        scale: z.object({ workersOnlineAtEnd: positive }).loose(),
      })
      .loose(),
  }),
});

let dir: string;
let bench: BenchRun | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-bench-smoke-'));
});

afterAll(async () => {
  stopBench(bench);
  await rm(dir, { recursive: true, force: true });
});

describe('npm run bench', () => {
  it('runs with tiny parameters and writes a complete JSON report', async () => {
    const jsonPath = join(dir, 'out', 'report.json');
    const resultsDir = join(dir, 'results');
    bench = runBenchScript('bench/run.ts', [
      // No build here: other tests may build dist/ meanwhile; compiled.test.ts runs the build.
      '--from-source',
      '--broker=mosquitto',
      '--tasks=50',
      '--latency-tasks=20',
      '--solo-tasks=10',
      '--warmup=10',
      '--raw-jobs=200',
      '--raw-runs=1',
      '--workers=2',
      '--slots=4',
      '--inflight=16',
      '--sessions=2',
      '--sim-workers=10',
      '--sim-connect-rate=100',
      '--sim-seconds=1',
      '--sim-idle-seconds=0',
      '--streams=8',
      '--stream-tokens=40',
      '--stream-seconds=2',
      '--stream-sessions=2',
      '--stream-workers=1',
      `--results-dir=${resultsDir}`,
      `--json=${jsonPath}`,
    ]);
    const run = await bench.done;
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    expect(run.stdout).toContain('throughput (tasks/s)');
    expect(run.stderr).toContain('written:');

    const report = reportSchema.parse(JSON.parse(await readFile(jsonPath, 'utf8')));
    expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p99);
    expect(report.soloLatencyMs.p50).toBeLessThanOrEqual(report.soloLatencyMs.p99);
    expect(run.stdout).toContain('one task alone p50 (ms)');
    expect(report.ratioToRawBullmq).toBeCloseTo(
      report.throughputTasksPerSec / report.rawBullmqJobsPerSec,
      1,
    );
    expect(existsSync(join(resultsDir, 'latest.json'))).toBe(true);
  }, 60_000);
});
