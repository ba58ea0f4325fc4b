/** The benchmarks (bench/run.ts, bench/autoscale.ts) as processes, for their smoke tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from './flota-process.ts';

export interface BenchOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BenchRun {
  child: ChildProcess;
  /** Resolves when the benchmark exits, with everything it printed. */
  done: Promise<BenchOutcome>;
}

/** Runs `entry` (relative to the repository) as its npm script does: `node --import tsx <entry> <args>`. */
export function runBenchScript(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): BenchRun {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<BenchOutcome>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

/** SIGTERM to a benchmark still running (a test that failed half-way): it stops what it started. */
export function stopBench(run: BenchRun | undefined): void {
  const child = run?.child;
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
