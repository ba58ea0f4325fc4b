/**
 * The figures of one chaos run: what was submitted, how it ended, what the
 * faults cost, and every invariant that did not hold. Printed as a table and
 * written to tests/chaos/results/last-run-<mode>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChaosMode } from './cluster.ts';
import type { ChaosSettings } from './config.ts';
import type { Fault } from './faults.ts';
import type { ServerVerdict } from './server-view.ts';
import type { SessionStats } from './session-client.ts';
import type { V1Outcome } from './v1-stream-client.ts';

export interface FaultFigure {
  kind: Fault['kind'];
  target: string;
  /** Seconds since the run started. */
  atS: number;
  endS?: number;
  detectionMs?: number;
  detectedAs?: string;
  /** Pause only: SIGCONT → the master lists the worker online again. */
  rejoinMs?: number;
  recoveryMs?: number;
  masterWasDown?: boolean;
  error?: string;
}

export interface ChaosFigures {
  mode: ChaosMode;
  seed: number;
  settings: Omit<ChaosSettings, 'showLogs' | 'seed'>;
  runMs: number;
  tasks: number;
  acked: number;
  completed: number;
  failed: number;
  failedReasons: Record<string, number>;
  duplicates: number;
  replayedFiltered: number;
  lost: number;
  lostTasks: Array<{ taskId?: string; clientId: string; rest?: string; errors: string[] }>;
  abandonedSubmits: Array<{ clientId: string; reason?: string }>;
  staleChunks: number;
  revokedAnswers: string[];
  mismatchedAnswers: string[];
  mismatchedChunks: number;
  doubleSubmits: string[];
  foreignTasks: string[];
  unstampedEvents: number;
  retryingEvents: number;
  /** New attempts that continued a lost attempt's text, and that started over instead. */
  continuedAttempts: number;
  restartedAttempts: number;
  /** Texts a browser would have shown that were not the start of the answer. */
  brokenDisplays: string[];
  /** Streaming mode: answers streamed through /v1 while workers died. */
  v1?: V1Outcome;
  submitSends: number;
  submitTimeouts: number;
  submitRefusals: Record<string, number>;
  sessions: Pick<SessionStats, 'resumed'> & {
    connects: number;
    epochChanges: number;
    helloFailures: number;
  };
  server: ServerVerdict;
  faults: FaultFigure[];
  maxDetectionMs: number | null;
  maxRecoveryMs: number | null;
  badInput: { sent: number; unexpected: string[] };
  processes: {
    started: number;
    crashes: string[];
    unexpectedExits: string[];
    errorLines: Record<string, Record<string, number>>;
  };
}

const list = (items: string[], max = 10) =>
  items.length <= max ? items : [...items.slice(0, max), `… and ${items.length - max} more`];

/** Every invariant of the issue that did not hold, in words. */
export function problemsOf(f: ChaosFigures): string[] {
  const p: string[] = [];
  const need = (ok: boolean, what: string, detail?: unknown) => {
    if (!ok) p.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail)}`);
  };
  need(
    f.acked === f.tasks,
    `${f.tasks - f.acked} submissions never accepted`,
    f.abandonedSubmits.slice(0, 10),
  );
  need(
    f.lost === 0,
    `${f.lost} tasks lost (acked, never terminal at the client)`,
    f.lostTasks.slice(0, 10),
  );
  need(f.completed + f.failed === f.acked - f.lost, 'terminal counts do not add up');
  need(f.duplicates === 0, `${f.duplicates} duplicate terminal events delivered`);
  const unexplained = Object.keys(f.failedReasons).filter((r) => r.includes('(no reason given)'));
  need(unexplained.length === 0, 'tasks failed without a reason', unexplained);
  need(f.staleChunks === 0, `${f.staleChunks} chunks of a revoked attempt delivered`);
  need(f.revokedAnswers.length === 0, 'answers from a revoked attempt', list(f.revokedAnswers));
  need(
    f.mismatchedAnswers.length === 0,
    'answers not matching their prompt',
    list(f.mismatchedAnswers),
  );
  need(f.mismatchedChunks === 0, `${f.mismatchedChunks} chunks not matching their prompt`);
  need(f.doubleSubmits.length === 0, 'one clientId became several tasks', list(f.doubleSubmits));
  need(
    f.foreignTasks.length === 0,
    'events about tasks the session never submitted',
    list(f.foreignTasks),
  );
  need(f.unstampedEvents === 0, `${f.unstampedEvents} task events without outboxSeq`);
  need(
    f.brokenDisplays.length === 0,
    'a browser showed text that is not the start of the answer',
    list(f.brokenDisplays),
  );
  if (f.mode === 'streaming') {
    // Echo workers continue every answer, and no master restart loses what was streamed.
    need(f.restartedAttempts === 0, `${f.restartedAttempts} answers started over`);
    need(f.continuedAttempts > 0, 'no attempt died mid-stream and was continued');
    const v1 = f.v1;
    need(v1 !== undefined, 'no /v1 streams were run');
    if (v1) {
      need(v1.errors.length === 0, '/v1 streams failed', list(v1.errors));
      need(v1.broken.length === 0, '/v1 streams whose text is not the answer', list(v1.broken));
      need(v1.restarts === 0, `${v1.restarts} /v1 streams announced a restart`);
      need(v1.whole === v1.requests, `${v1.requests - v1.whole} /v1 streams not whole`);
    }
  }
  // A SIGKILL between a commit and its log line loses the line, so this only proves the
  // master's "task completed" lines are still recognised (the log checks rely on them).
  need(
    f.server.committedTasks * 2 >= f.completed,
    `the master logged "task completed" for only ${f.server.committedTasks} of ${f.completed} tasks: log lines not recognised?`,
  );
  need(f.server.doubleCommits.length === 0, 'tasks committed twice', list(f.server.doubleCommits));
  need(
    f.server.revokedCommits.length === 0,
    'revoked attempts committed',
    list(f.server.revokedCommits),
  );
  need(
    f.server.restMismatches.length === 0,
    'REST disagrees with the client',
    list(f.server.restMismatches),
  );
  need(
    f.server.restUnchecked === 0,
    `${f.server.restUnchecked} tasks not cross-checked: REST too slow`,
  );
  need(f.badInput.unexpected.length === 0, 'bad input not refused', f.badInput.unexpected);
  need(f.processes.crashes.length === 0, 'crash output', list(f.processes.crashes));
  need(f.processes.unexpectedExits.length === 0, 'unexpected exits', f.processes.unexpectedExits);
  for (const fault of f.faults) {
    need(!fault.error, `fault ${fault.kind} ${fault.target} at ${fault.atS}s failed`, fault.error);
    const isWorkerFault = fault.kind === 'worker-kill' || fault.kind === 'worker-pause';
    if (isWorkerFault && !fault.masterWasDown) {
      need(
        fault.detectionMs !== undefined,
        `the master never reported ${fault.target} offline after its ${fault.kind} at ${fault.atS}s`,
      );
    }
    if (fault.kind === 'worker-pause' && !fault.masterWasDown) {
      need(
        fault.rejoinMs !== undefined,
        `the master never took ${fault.target} back after its SIGCONT at ${fault.endS}s`,
      );
    }
  }
  const kinds = new Set(f.faults.map((x) => x.kind));
  const expected: Fault['kind'][] =
    f.mode === 'redis'
      ? ['worker-kill', 'worker-pause', 'broker-restart', 'master-kill', 'redis-outage']
      : f.mode === 'embedded'
        ? ['worker-kill', 'worker-pause', 'master-kill']
        : ['worker-kill', 'worker-pause'];
  need(
    expected.every((k) => kinds.has(k)),
    'not every fault was injected',
    expected.filter((k) => !kinds.has(k)),
  );
  return p;
}

const pad = (v: unknown, n: number) => String(v ?? '-').padEnd(n);
const ms = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${v} ms`);

export function formatFigures(f: ChaosFigures, problems: string[]): string {
  const reasons = Object.entries(f.failedReasons)
    .map(([r, n]) => `${r} ×${n}`)
    .join('; ');
  const refusals = Object.entries(f.submitRefusals)
    .map(([r, n]) => `${r} ×${n}`)
    .join('; ');
  const lines = [
    `chaos [${f.mode}] seed ${f.seed}: ${f.tasks} tasks, ${f.settings.sessions} sessions, ${f.settings.workers} workers × ${f.settings.slots} slots, window ${f.settings.windowMs / 1000} s, run ${(f.runMs / 1000).toFixed(1)} s`,
    `  tasks ${f.tasks} | acked ${f.acked} | completed ${f.completed} | failed ${f.failed} | lost ${f.lost} | duplicates seen ${f.duplicates} | replays filtered ${f.replayedFiltered}`,
    `  failed with reason: ${reasons || 'none'}`,
    `  stale chunks ${f.staleChunks} | revoked answers ${f.revokedAnswers.length} | mismatched answers ${f.mismatchedAnswers.length} | mismatched chunks ${f.mismatchedChunks} | double submits ${f.doubleSubmits.length} | foreign tasks ${f.foreignTasks.length} | unstamped ${f.unstampedEvents}`,
    `  submit sends ${f.submitSends} (timeouts ${f.submitTimeouts}; refusals: ${refusals || 'none'}) | retrying events ${f.retryingEvents}`,
    `  attempts continued ${f.continuedAttempts} | started over ${f.restartedAttempts} | broken displays ${f.brokenDisplays.length}${f.v1 ? ` | /v1 streams ${f.v1.whole}/${f.v1.requests} whole, ${f.v1.broken.length} broken, ${f.v1.restarts} restarts, ${f.v1.errors.length} errors` : ''}`,
    `  sessions: connects ${f.sessions.connects}, epoch changes ${f.sessions.epochChanges}, hello failures ${f.sessions.helloFailures}, resumed fresh ${f.sessions.resumed.fresh} / replay ${f.sessions.resumed.replay} / resync ${f.sessions.resumed.resync}`,
    `  master: results rejected ${JSON.stringify(f.server.rejectedResults)}, tasks with a commit line ${f.server.committedTasks}, double commits ${f.server.doubleCommits.length}, revoked commits ${f.server.revokedCommits.length}, REST mismatches ${f.server.restMismatches.length}`,
    `  ${pad('fault', 15)}${pad('target', 11)}${pad('at', 7)}${pad('end', 7)}${pad('detection', 31)}${pad('recovery', 10)}note`,
    ...f.faults.map((x) => {
      const detection =
        x.detectionMs === undefined
          ? x.masterWasDown
            ? '(master down)'
            : '-'
          : `${x.detectionMs} ms (${x.detectedAs})`;
      const notes = [
        x.rejoinMs === undefined ? '' : `back ${x.rejoinMs} ms after SIGCONT`,
        x.error ? `ERROR ${x.error}` : '',
      ].filter(Boolean);
      const end = x.endS === undefined ? '-' : `${x.endS}s`;
      return `  ${pad(x.kind, 15)}${pad(x.target, 11)}${pad(`${x.atS}s`, 7)}${pad(end, 7)}${pad(detection, 31)}${pad(ms(x.recoveryMs), 10)}${notes.join('; ')}`;
    }),
    `  max detection time ${ms(f.maxDetectionMs)} | max recovery time ${ms(f.maxRecoveryMs)}`,
    `  bad input: ${f.badInput.sent} sent, ${f.badInput.unexpected.length} not refused`,
    `  processes: ${f.processes.started} started, crash lines ${f.processes.crashes.length}, unexpected exits ${f.processes.unexpectedExits.length}`,
    problems.length === 0
      ? '  verdict: every invariant held'
      : `  verdict: ${problems.length} problems`,
    ...problems.map((x) => `    - ${x.slice(0, 2_000)}`),
  ];
  return `${lines.join('\n')}\n`;
}

export async function writeFigures(dir: string, f: ChaosFigures, problems: string[]) {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `last-run-${f.mode}.json`);
  await writeFile(path, `${JSON.stringify({ ...f, problems }, null, 2)}\n`);
  return path;
}
