/**
 * Runs the checks in their order against one installation, each bounded by
 * its timeout, and reports them as a table or JSON. A worker that died in a
 * check is started again before the next one, so one failure does not hide
 * the rest. A check that needs what the worker does not offer (an attached
 * worker has no command, and maybe no process the kit may signal) is skipped.
 */
import type { Logger } from 'pino';
import { FlotaError } from '../../common/errors.ts';
import { withTimeout } from '../../common/timeout.ts';
import { type Check, type CheckResult, citation } from './check.ts';
import { CheckSkipped, ConformanceFailure } from './check-errors.ts';
import { config } from './checks/control.ts';
import {
  badMessage,
  cancel,
  deadline,
  drainResume,
  leaseRevoked,
  staleAttempt,
} from './checks/failures.ts';
import { continuation, sigterm } from './checks/lifecycle.ts';
import { brokerRestart, masterRestart, resultResend } from './checks/recovery.ts';
import { heartbeat, lastWill, login, onlineStatus } from './checks/registration.ts';
import { result, slots, streamOrder } from './checks/tasks.ts';
import type { ConformanceContext } from './context.ts';

/** Every check, in the order they run: the destructive ones (kills, stops) last. */
export const CHECKS: readonly Check[] = [
  onlineStatus,
  heartbeat,
  login,
  result,
  streamOrder,
  slots,
  badMessage,
  staleAttempt,
  cancel,
  drainResume,
  config,
  deadline,
  leaseRevoked,
  resultResend,
  continuation,
  brokerRestart,
  masterRestart,
  lastWill,
  sigterm,
];

/** `--checks` named a check or group that does not exist. */
export class UnknownCheckError extends FlotaError {
  constructor(message: string) {
    super('unknown_check', message);
  }
}

/** The checks `--checks` names, by id or by group (`registration`). */
export function selectChecks(names: string[] | undefined): Check[] {
  if (!names || names.length === 0) return [...CHECKS];
  const unknown = names.filter((n) => !CHECKS.some((c) => c.id === n || c.id.startsWith(`${n}.`)));
  if (unknown.length > 0) {
    throw new UnknownCheckError(
      `unknown check ${unknown.join(', ')}; the checks are ${CHECKS.map((c) => c.id).join(', ')}`,
    );
  }
  return CHECKS.filter((c) => names.some((n) => c.id === n || c.id.startsWith(`${n}.`)));
}

/** A check not run, and why. */
const skipped = (check: Check, detail: string): CheckResult => ({
  id: check.id,
  title: check.title,
  citation: citation(check.section),
  outcome: 'skipped',
  detail,
  ms: 0,
});

async function runOne(check: Check, ctx: ConformanceContext): Promise<CheckResult> {
  const started = Date.now();
  const base = { id: check.id, title: check.title, citation: citation(check.section) };
  try {
    await withTimeout(
      check.run(ctx),
      check.timeoutMs,
      () => new ConformanceFailure(`did not finish within ${check.timeoutMs} ms`),
    );
    return { ...base, outcome: 'passed', ms: Date.now() - started };
  } catch (err) {
    const ms = Date.now() - started;
    if (err instanceof CheckSkipped)
      return { ...base, outcome: 'skipped', detail: err.message, ms };
    const detail =
      err instanceof ConformanceFailure
        ? err.message
        : `the check could not run: ${err instanceof Error ? err.message : String(err)}`;
    return { ...base, outcome: 'failed', detail: `${detail} (${base.citation})`, ms };
  }
}

export async function runChecks(
  checks: Check[],
  ctx: ConformanceContext,
  log: Logger,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    const lacking = ctx.lacks(check.needs);
    if (lacking) {
      results.push(skipped(check, lacking));
      continue;
    }
    if (!ctx.worker().running) {
      try {
        await ctx.restartWorker();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        results.push(skipped(check, `the worker under test is not running: ${why.split('\n')[0]}`));
        continue;
      }
    }
    const outcome = await runOne(check, ctx);
    log.debug({ check: check.id, outcome: outcome.outcome, ms: outcome.ms }, 'check done');
    results.push(outcome);
  }
  return results;
}

const MARK = { passed: 'pass', failed: 'FAIL', skipped: 'skip' } as const;

/** The human table: one line per check, then why for each that failed or was skipped. */
export function formatTable(results: CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.id.length), 5);
  const lines = [`${'check'.padEnd(width)}  result  time    what`];
  for (const r of results) {
    const time = `${(r.ms / 1000).toFixed(1)}s`.padStart(6);
    lines.push(`${r.id.padEnd(width)}  ${MARK[r.outcome].padEnd(6)}  ${time}  ${r.title}`);
    if (r.detail) lines.push(`${' '.repeat(width)}  └ ${r.detail}`);
  }
  const count = (o: CheckResult['outcome']) => results.filter((r) => r.outcome === o).length;
  lines.push(
    '',
    `${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`,
  );
  return lines.join('\n');
}

/** One line: which checks were skipped, grouped by why; undefined when none was. */
export function formatSkipped(results: CheckResult[]): string | undefined {
  const byReason = new Map<string, string[]>();
  for (const r of results) {
    if (r.outcome !== 'skipped') continue;
    byReason.set(r.detail ?? '', [...(byReason.get(r.detail ?? '') ?? []), r.id]);
  }
  if (byReason.size === 0) return undefined;
  const groups = [...byReason].map(([why, ids]) => `${ids.join(', ')} (${why})`);
  return `skipped: ${groups.join('; ')}`;
}
