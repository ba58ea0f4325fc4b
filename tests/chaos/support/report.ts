/** Prints a run's figures; on problems (or FLOTA_TEST_LOGS=1) says where every process's output is. */
import { relative } from 'node:path';
import { REPO_ROOT } from '../../e2e/support/flota-process.ts';
import type { ChaosOutcome, ChaosRun } from './chaos-run.ts';
import type { ChaosSettings } from './config.ts';

export function reportOutcome(run: ChaosRun, outcome: ChaosOutcome, settings: ChaosSettings): void {
  process.stdout.write(`\n${outcome.report}`);
  if (outcome.problems.length > 0 || settings.showLogs) {
    process.stdout.write(
      `  process output: ${relative(REPO_ROOT, run.logDir)}/ (replay with CHAOS_SEED=${settings.seed})\n`,
    );
  }
}
