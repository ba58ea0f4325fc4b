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
import { MIN_APPLIED_PCT } from './heartbeat-lag.ts';
import { REPO_ROOT } from './processes.ts';
import type { RawBullmqResult } from './raw-bullmq.ts';
import type { ScaleResult } from './scale.ts';
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
  masterRssMb10k: 800,
  streamTokensPerSec: 150_000,
  streamDelayP99Ms: 20,
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
      heartbeatLagP99Ms: head.scale.heartbeats?.lagP99Ms,
      keptUp: head.scale.keptUp,
    },
    /** `--sim-workers-large` (e.g. 10,000 sims); null when it did not run. */
    scaleLarge: head.scaleLarge
      ? {
          workers: head.scaleLarge.workers,
          workersOnline: head.scaleLarge.workersOnlineAtEnd,
          masterRssMb: head.scaleLarge.masterRssMb,
          throughputDropPct: head.scaleLarge.throughputDropPct,
          heartbeatsAppliedPct: head.scaleLarge.heartbeats?.appliedPctOfSent,
          heartbeatLagP99Ms: head.scaleLarge.heartbeats?.lagP99Ms,
          masterCpuUsPerHeartbeat: head.scaleLarge.idle?.masterCpuUsPerHeartbeat,
          keptUp: head.scaleLarge.keptUp,
        }
      : null,
    streams: head.streams
      ? {
          streams: head.streams.streams,
          tokensPerSec: head.streams.tokensPerSec,
          delayMs: head.streams.delayMs,
          cpuMsPer1kTokens: head.streams.cpuMsPer1kTokens,
        }
      : null,
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
        masterRssMb10k: head.scaleLarge
          ? head.scaleLarge.masterRssMb <= TARGETS.masterRssMb10k && head.scaleLarge.keptUp === true
          : null,
        streamTokensPerSec: (head.streams?.tokensPerSec ?? 0) >= TARGETS.streamTokensPerSec,
        streamDelayP99Ms:
          head.streams !== undefined && head.streams.delayMs.p99 <= TARGETS.streamDelayP99Ms,
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

const streamCell = (
  r: Pick<BrokerResult, 'streams'>,
  cell: (s: NonNullable<BrokerResult['streams']>) => string,
) => (r.streams ? cell(r.streams) : '—');

type Row<R> = [string, (r: R) => string, string];

/** Heartbeat and listing figures of a scale step (and, for the large one, its headline rows). */
function scaleRows<R extends Pick<BrokerResult, 'scale' | 'scaleLarge'>>(
  name: string,
  step: (r: R) => ScaleResult | undefined,
  rssTarget: string,
): Array<Row<R>> {
  const cell =
    (f: (s: ScaleResult) => string) =>
    (r: R): string => {
      const s = step(r);
      return s ? f(s) : '—';
    };
  const large: Array<Row<R>> = [
    [`${name}: sim workers online`, cell((s) => `${s.workersOnlineAtEnd}/${s.workers}`), ''],
    [
      `${name}: master RSS before / with (MB)`,
      cell((s) => `${fmt(s.masterRssBeforeMb, 0)} / ${fmt(s.masterRssMb, 0)}`),
      rssTarget,
    ],
    [
      `${name}: master heap before / with (MB)`,
      cell((s) => `${fmt(s.masterHeapBeforeMb, 0)} / ${fmt(s.masterHeapWithSimsMb, 0)}`),
      '',
    ],
    [
      `${name}: tasks/s before / with`,
      cell((s) => `${fmt(s.baselineTasksPerSec, 0)} / ${fmt(s.throughputTasksPerSec, 0)}`),
      '',
    ],
    [`${name}: throughput drop (%)`, cell((s) => fmt(s.throughputDropPct, 1)), ''],
    [`${name}: connect time (s)`, cell((s) => fmt(s.connectSeconds, 1)), ''],
  ];
  return [
    ...(name === 'sims' ? [] : large),
    [
      `${name}: master CPU idle, ms/s without / with`,
      cell(
        (s) =>
          `${fmt(s.idle?.masterCpuMsPerSecBefore, 0)} / ${fmt(s.idle?.masterCpuMsPerSecWithSims, 0)}`,
      ),
      '',
    ],
    [
      `${name}: master CPU per heartbeat (µs)`,
      cell((s) => fmt(s.idle?.masterCpuUsPerHeartbeat, 1)),
      '',
    ],
    [`${name}: sims' own CPU (ms/s)`, cell((s) => fmt(s.idle?.simsCpuMsPerSec, 0)), ''],
    [
      `${name}: heartbeats applied / sent (%)`,
      cell((s) => fmt(s.heartbeats?.appliedPctOfSent, 1)),
      `≥ ${MIN_APPLIED_PCT}`,
    ],
    [
      `${name}: heartbeat lag mean / p99 (ms)`,
      cell((s) => `${fmt(s.heartbeats?.lagMeanMs, 1)} / ≤ ${fmt(s.heartbeats?.lagP99Ms, 0)}`),
      '≤ period',
    ],
    [
      `${name}: kept up with heartbeats`,
      cell((s) => (s.keptUp === undefined ? '—' : s.keptUp ? 'yes' : 'NO')),
      'yes',
    ],
    [
      `${name}: GET /api/workers (ms, KB)`,
      cell((s) =>
        s.listing ? `${fmt(s.listing.workers.ms, 0)}, ${fmt(s.listing.workers.kb, 0)}` : '—',
      ),
      '',
    ],
    [
      `${name}: GET /metrics (ms, KB)`,
      cell((s) =>
        s.listing ? `${fmt(s.listing.metrics.ms, 0)}, ${fmt(s.listing.metrics.kb, 0)}` : '—',
      ),
      '',
    ],
  ];
}

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
    [
      'Socket.IO messages / events per task',
      (r) => `${fmt(r.socketPerTask?.messages, 2)} / ${fmt(r.socketPerTask?.events, 2)}`,
      '',
    ],
    ['Redis commands/task (in scripts too)', (r) => fmt(r.redisCommandsPerTask?.throughput, 1), ''],
    ['Redis commands/task, one alone', (r) => fmt(r.redisCommandsPerTask?.solo, 1), ''],
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
    ...scaleRows('sims', (r) => r.scale, ''),
    ...(runs.some((r) => r.scaleLarge)
      ? scaleRows('large', (r) => r.scaleLarge, `≤ ${TARGETS.masterRssMb10k}`)
      : []),
    [
      'streamed tokens/s',
      (r) => fmt(r.streams?.tokensPerSec, 0),
      `≥ ${TARGETS.streamTokensPerSec}`,
    ],
    [
      '  streams, offered tokens/s',
      (r) => streamCell(r, (s) => `${s.streams}, ${fmt(s.offeredTokensPerSec, 0)}`),
      '',
    ],
    ['  delay per token p50 (ms)', (r) => fmt(r.streams?.delayMs.p50, 2), ''],
    [
      '  delay per token p99 (ms)',
      (r) => fmt(r.streams?.delayMs.p99, 2),
      `≤ ${TARGETS.streamDelayP99Ms}`,
    ],
    ['  tokens per task:chunk', (r) => fmt(r.streams?.tokensPerChunkEvent, 2), ''],
    ['  CPU ms/1k tokens: master', (r) => fmt(r.streams?.cpuMsPer1kTokens.master, 1), ''],
    ['  CPU ms/1k tokens: workers', (r) => fmt(r.streams?.cpuMsPer1kTokens.workers, 1), ''],
    ['  CPU ms/1k tokens: bench client', (r) => fmt(r.streams?.cpuMsPer1kTokens.client, 1), ''],
    [
      '  answers failed / mismatched',
      (r) => streamCell(r, (s) => `${s.failed} / ${s.mismatched}`),
      '0 / 0',
    ],
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
