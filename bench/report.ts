/**
 * The benchmark's output: a table on stdout and a JSON document whose
 * top-level keys dashboards and CI read (`throughputTasksPerSec`,
 * `rawBullmqJobsPerSec`, `ratioToRawBullmq`, `latencyMs`, `registrationMs`,
 * `scale`, `commit`, `parameters`). The headline figures come from the first
 * broker run (Mosquitto when it ran); every run is under `runs`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { round2 } from './drive.ts';
import { REPO_ROOT } from './processes.ts';
import type { RawBullmqResult } from './raw-bullmq.ts';
import type { BenchParams, BrokerResult } from './scenario.ts';

/** The goals the numbers are read against (not pass/fail tests). */
export const TARGETS = {
  ratioToRawBullmq: 0.3,
  cpuMsPerTaskMasterAndWorkers: 0.5,
  soloLatencyP50Ms: 1.5,
  soloLatencyP99Ms: 5,
  registrationMs: 300,
  masterRssMb: 200,
  throughputDropPct: 10,
};

/** CPU ms per task of the master and the echo workers together. */
const flotaCpu = (r: Pick<BrokerResult, 'cpuMsPerTask'>) =>
  round2((r.cpuMsPerTask.master ?? Number.NaN) + (r.cpuMsPerTask.workers ?? Number.NaN));

export function gitCommit(): { commit: string; dirty: boolean } {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  try {
    return {
      commit: git('rev-parse', '--short=12', 'HEAD'),
      dirty: git('status', '--porcelain') !== '',
    };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

export function buildReport(
  params: BenchParams & { brokers: string[] },
  raw: RawBullmqResult,
  runs: BrokerResult[],
  startedAt: Date,
) {
  const head = runs[0];
  if (!head) throw new Error('no broker run to report');
  const ratio = (r: BrokerResult) => round2(r.throughputTasksPerSec / raw.jobsPerSec);
  return {
    ...reportHeader(startedAt),
    parameters: { ...params, store: 'redis' },
    broker: head.broker,
    throughputTasksPerSec: head.throughputTasksPerSec,
    rawBullmqJobsPerSec: round2(raw.jobsPerSec),
    ratioToRawBullmq: ratio(head),
    latencyMs: { p50: head.latencyMs.p50, p95: head.latencyMs.p95, p99: head.latencyMs.p99 },
    soloLatencyMs: { p50: head.solo.latencyMs.p50, p99: head.solo.latencyMs.p99 },
    registrationMs: head.registrationMs,
    scale: {
      workers: head.scale.workers,
      masterRssMb: head.scale.masterRssMb,
      throughputDropPct: head.scale.throughputDropPct,
    },
    targets: {
      ...TARGETS,
      met: {
        ratioToRawBullmq: ratio(head) >= TARGETS.ratioToRawBullmq,
        cpuMsPerTaskMasterAndWorkers: flotaCpu(head) <= TARGETS.cpuMsPerTaskMasterAndWorkers,
        soloLatencyP50Ms: head.solo.latencyMs.p50 <= TARGETS.soloLatencyP50Ms,
        soloLatencyP99Ms: head.solo.latencyMs.p99 <= TARGETS.soloLatencyP99Ms,
        registrationMs: head.registrationMs <= TARGETS.registrationMs,
        masterRssMb: head.scale.masterRssMb <= TARGETS.masterRssMb,
        throughputDropPct: head.scale.throughputDropPct <= TARGETS.throughputDropPct,
      },
    },
    raw: { ...raw, jobsPerSec: round2(raw.jobsPerSec) },
    runs: Object.fromEntries(runs.map((r) => [r.broker, { ...r, ratioToRawBullmq: ratio(r) }])),
  };
}
export type BenchReport = ReturnType<typeof buildReport>;

/** What every report starts with: what was measured (commit), when, for how long, on what. */
export function reportHeader(startedAt: Date) {
  const { commit, dirty } = gitCommit();
  return {
    commit,
    dirty,
    at: startedAt.toISOString(),
    durationSec: round2((Date.now() - startedAt.getTime()) / 1000),
    host: { cpus: cpus().length, node: process.version },
  };
}

/**
 * Writes `report` as `<dir>/<prefix><timestamp><suffix>.json` and
 * `<dir>/<prefix>latest.json` (and `extra`, if given); returns the paths.
 */
export function writeJsonReport(
  report: { at: string },
  dir: string,
  name: { prefix?: string; suffix?: string },
  extra?: string,
): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = report.at.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const text = `${JSON.stringify(report, null, 2)}\n`;
  const { prefix = '', suffix = '' } = name;
  const files = [join(dir, `${prefix}${stamp}${suffix}.json`), join(dir, `${prefix}latest.json`)];
  if (extra) {
    mkdirSync(dirname(extra), { recursive: true });
    files.push(extra);
  }
  for (const file of files) writeFileSync(file, text);
  return files;
}

/** Writes `<dir>/<timestamp>-<commit>.json` and `<dir>/latest.json` (and `extra`, if given). */
export function writeReport(report: BenchReport, dir: string, extra?: string): string[] {
  return writeJsonReport(report, dir, { suffix: `-${report.commit}` }, extra);
}

/** Rows under a header, first column left-aligned, the rest right-aligned, with a rule below the header. */
export function alignColumns(header: string[], body: string[][]): string[] {
  const widths = header.map((_, i) =>
    Math.max(...[header, ...body].map((row) => (row[i] ?? '').length)),
  );
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ');
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [line(header), rule, ...body.map(line)];
}

const fmt = (n: number | undefined, digits = 1) =>
  n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);

/** The table, one column per broker run, plus the target. */
export function formatTable(report: BenchReport): string {
  const runs = Object.values(report.runs);
  const rows: Array<[string, (r: (typeof runs)[number]) => string, string]> = [
    ['throughput (tasks/s)', (r) => fmt(r.throughputTasksPerSec, 0), ''],
    ['raw BullMQ floor (jobs/s)', () => fmt(report.rawBullmqJobsPerSec, 0), ''],
    ['ratio to raw BullMQ', (r) => fmt(r.ratioToRawBullmq, 2), `≥ ${TARGETS.ratioToRawBullmq}`],
    ['offered load (tasks/s)', (r) => fmt(r.latency.offeredPerSec, 0), 'max / 2'],
    ['latency p50 (ms)', (r) => fmt(r.latencyMs.p50, 2), ''],
    ['latency p95 (ms)', (r) => fmt(r.latencyMs.p95, 2), ''],
    ['latency p99 (ms)', (r) => fmt(r.latencyMs.p99, 2), ''],
    [
      'one task alone p50 (ms)',
      (r) => fmt(r.solo.latencyMs.p50, 2),
      `≤ ${TARGETS.soloLatencyP50Ms}`,
    ],
    [
      'one task alone p99 (ms)',
      (r) => fmt(r.solo.latencyMs.p99, 2),
      `≤ ${TARGETS.soloLatencyP99Ms}`,
    ],
    ['master submit→commit p50 (ms)', (r) => fmt(r.latency.serverTotalMs.p50, 2), ''],
    ['  p50 submitted→assigned', (r) => fmt(r.latency.stagesP50Ms.queue, 0), ''],
    ['  p50 assigned→started', (r) => fmt(r.latency.stagesP50Ms.dispatch, 0), ''],
    ['  p50 started→finished', (r) => fmt(r.latency.stagesP50Ms.processing, 0), ''],
    ['  p50 finished→committed', (r) => fmt(r.latency.stagesP50Ms.commit, 0), ''],
    ['  p50 client − master', (r) => fmt(r.latency.stagesP50Ms.client, 2), ''],
    ['CPU ms/task: master', (r) => fmt(r.cpuMsPerTask.master, 2), ''],
    ['CPU ms/task: echo workers', (r) => fmt(r.cpuMsPerTask.workers, 2), ''],
    [
      'CPU ms/task: master + workers',
      (r) => fmt(flotaCpu(r), 2),
      `≤ ${TARGETS.cpuMsPerTaskMasterAndWorkers}`,
    ],
    ['CPU ms/task: redis', (r) => fmt(r.cpuMsPerTask.redis, 2), ''],
    ['CPU ms/task: mosquitto', (r) => fmt(r.cpuMsPerTask.broker, 2), ''],
    ['CPU ms/task: bench client', (r) => fmt(r.cpuMsPerTask.client, 2), ''],
    ['CPU ms/task: rest of machine', (r) => fmt(r.cpuMsPerTask.other, 2), ''],
    ['registration, spawn (ms)', (r) => fmt(r.registrationMs, 0), `≤ ${TARGETS.registrationMs}`],
    ['registration, MQTT connect (ms)', (r) => fmt(r.registrationFromConnectMs, 0), ''],
    ['fleet ready (ms)', (r) => fmt(r.fleetReadyMs, 0), ''],
    ['sim workers online', (r) => `${r.scale.workersOnlineAtEnd}/${r.scale.workers}`, ''],
    ['master RSS at start (MB)', (r) => fmt(r.masterRssStartMb, 0), ''],
    ['master heap at start (MB)', (r) => fmt(r.masterHeapStartMb, 0), ''],
    [
      'master heap before / with sims (MB)',
      (r) => `${fmt(r.scale.masterHeapBeforeMb, 0)} / ${fmt(r.scale.masterHeapWithSimsMb, 0)}`,
      '',
    ],
    ['master RSS before sims (MB)', (r) => fmt(r.scale.masterRssBeforeMb, 0), ''],
    ['master RSS with sims (MB)', (r) => fmt(r.scale.masterRssMb, 0), `≤ ${TARGETS.masterRssMb}`],
    ['throughput just before sims (tasks/s)', (r) => fmt(r.scale.baselineTasksPerSec, 0), ''],
    ['throughput with sims (tasks/s)', (r) => fmt(r.scale.throughputTasksPerSec, 0), ''],
    [
      'throughput drop (%)',
      (r) => fmt(r.scale.throughputDropPct, 1),
      `≤ ${TARGETS.throughputDropPct}`,
    ],
    ['master CPU ms/task before sims', (r) => fmt(r.scale.baselineCpuMsPerTask.master, 2), ''],
    ['master CPU ms/task with sims', (r) => fmt(r.scale.cpuMsPerTask.master, 2), ''],
    ['rest of machine CPU ms/task, sims', (r) => fmt(r.scale.cpuMsPerTask.other, 2), ''],
    ['failed tasks', (r) => String(r.failed), '0'],
  ];
  const header = ['', ...runs.map((r) => `Redis + ${r.broker}`), 'target'];
  const body = rows.map(([label, cell, target]) => [label, ...runs.map(cell), target]);
  const dirty = report.dirty ? ' (uncommitted changes)' : '';
  return [
    `flota bench — commit ${report.commit}${dirty}, ${report.host.cpus} cores, node ${report.host.node}`,
    ...alignColumns(header, body),
  ].join('\n');
}
