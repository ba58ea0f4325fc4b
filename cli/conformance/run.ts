/**
 * One conformance run: the installation up, the worker started, the checks
 * run, everything stopped again, also when the run is interrupted (Ctrl-C).
 */
import type { FlotaLogger } from '../../common/logger.ts';
import type { CheckResult } from './check.ts';
import { openInstallation } from './context.ts';
import type { ConformanceOptions } from './options.ts';
import { runChecks, selectChecks } from './runner.ts';

export interface ConformanceReport {
  ok: boolean;
  command: string[];
  workerId: string;
  checks: CheckResult[];
  /** Set when the run could not start (the worker never came online, …). */
  error?: string;
}

/** `notice` hears what the person running the kit must act on (with `--attach`: how to start the worker). */
export async function runConformance(
  options: ConformanceOptions,
  logger: FlotaLogger,
  notice: (text: string) => void,
): Promise<ConformanceReport> {
  const log = logger.logger.child({ component: 'conformance' });
  const checks = selectChecks(options.checks);
  const report = (results: CheckResult[], error?: string): ConformanceReport => ({
    ok: error === undefined && results.every((r) => r.outcome !== 'failed'),
    command: options.command,
    workerId: options.workerId,
    checks: results,
    ...(error ? { error } : {}),
  });
  const installation = await openInstallation(options, logger, notice);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= installation.close();
    return closing;
  };
  const interrupted = (signal: NodeJS.Signals) => {
    log.warn({ signal }, 'interrupted: stopping the worker and the master');
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await installation.start();
    return report(await runChecks(checks, installation, log));
  } catch (err) {
    return report([], err instanceof Error ? err.message : String(err));
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await close();
  }
}
