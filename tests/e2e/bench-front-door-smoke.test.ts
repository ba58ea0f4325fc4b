/**
 * Proves `npm run bench:front-door` still runs end to end: the benchmark as a
 * process with tiny parameters, both ways (the model server directly and
 * through flota's /v1), a table with the ratios and a JSON report whose
 * figures are all measured.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BenchRun, runBenchScript, stopBench } from './support/bench.ts';

const positive = z.number().positive();
const figures = z.object({ ttftP50: positive, ttftP95: positive, tokensPerSP50: positive });
const reportSchema = z.object({
  params: z
    .object({ requests: z.literal(2), concurrency: z.literal(3), tokens: z.literal(20) })
    .loose(),
  direct: z.object({ solo: figures, concurrent: figures }),
  flota: z.object({ solo: figures, concurrent: figures }),
});

let dir: string;
let bench: BenchRun | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flota-bench-front-door-smoke-'));
});

afterAll(async () => {
  stopBench(bench);
  await rm(dir, { recursive: true, force: true });
});

describe('npm run bench:front-door', () => {
  it('measures a stream directly and through flota, and writes the report', async () => {
    const resultsDir = join(dir, 'results');
    bench = runBenchScript(
      'bench/front-door.ts',
      [
        '--requests=2',
        '--concurrency=3',
        '--tokens=20',
        '--token-ms=2',
        '--first-token-ms=10',
        '--warmup=1',
        `--results-dir=${resultsDir}`,
      ],
      { ...process.env, BENCH_SMOKE_DIR: dir, TMPDIR: dir },
    );
    const result = await bench.done;
    expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
    expect(result.stdout).toContain('time to first token p50');
    expect(result.stdout).toContain('tokens/s per stream p50');
    const [file] = await readdir(resultsDir);
    const report = reportSchema.parse(
      JSON.parse(await readFile(join(resultsDir, file as string), 'utf8')),
    );
    expect(report.flota.solo.ttftP50).toBeGreaterThan(0);
  });
});
