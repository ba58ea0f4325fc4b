/**
 * Proves `npm run bench:console` still runs end to end: the benchmark as a
 * process with tiny parameters (a few hundred tasks into the history, a few
 * simulated workers), every console request timed, a table and a JSON
 * report whose figures are all measured.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BenchRun, runBenchScript, stopBench } from './support/bench.ts';

const positive = z.number().positive();
const reportSchema = z.object({
  params: z.object({ tasks: z.literal(300), simWorkers: z.literal(10) }).loose(),
  goalMs: z.literal(100),
  seedTasksPerSec: positive,
  timings: z
    .array(
      z.object({ what: z.string(), p50: positive, p95: positive, max: positive, bytes: positive }),
    )
    .min(20),
});

let dir: string;
let bench: BenchRun | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-bench-console-smoke-'));
});

afterAll(async () => {
  stopBench(bench);
  await rm(dir, { recursive: true, force: true });
});

describe('npm run bench:console', () => {
  it('fills the history, times every console request, and writes the report', async () => {
    const resultsDir = join(dir, 'results');
    bench = runBenchScript(
      'bench/console.ts',
      [
        '--tasks=300',
        '--workers=1',
        '--sim-workers=10',
        '--samples=2',
        `--results-dir=${resultsDir}`,
      ],
      { ...process.env, BENCH_SMOKE_DIR: dir, TMPDIR: dir },
    );
    const result = await bench.done;
    expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
    expect(result.stdout).toContain('tasks: search prompt text');
    expect(result.stdout).toContain('console socket: connect → snapshot');
    const [file] = await readdir(resultsDir);
    const report = reportSchema.parse(
      JSON.parse(await readFile(join(resultsDir, file as string), 'utf8')),
    );
    const csv = report.timings.find((t) => t.what.startsWith('tasks: CSV'));
    expect(csv?.bytes).toBeGreaterThan(300 * 20);
  });
});
