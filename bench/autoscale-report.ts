/**
 * The autoscaling benchmark's output: a JSON document (every run, and the
 * ratios of the autoscaled run to the fixed ones, measured in the same
 * invocation) and a table with one column per run.
 */
import type { AutoscaleParams, RunKind, RunResult } from './autoscale-run.ts';
import { round2 } from './drive.ts';
import { alignColumns, reportHeader, writeJsonReport } from './report.ts';

const ratio = (a: number, b: number) => (b > 0 ? round2(a / b) : null);

export function buildAutoscaleReport(
  params: AutoscaleParams,
  runs: Record<RunKind, RunResult>,
  startedAt: Date,
) {
  const auto = runs.autoscaled;
  return {
    ...reportHeader(startedAt),
    parameters: { ...params, store: 'redis', broker: 'embedded' },
    ratios: {
      /** < 1: autoscaling finished the burst sooner than the minimum fleet. */
      makespanVsFixedMin: ratio(auto.makespanMs, runs['fixed-min'].makespanMs),
      /** How much slower than a fleet kept at max all along. */
      makespanVsFixedMax: ratio(auto.makespanMs, runs['fixed-max'].makespanMs),
      /** < 1: the share of fixed-max's worker time autoscaling used for the burst. */
      workerSecondsVsFixedMax: ratio(auto.workerSeconds, runs['fixed-max'].workerSeconds),
    },
    runs,
  };
}
export type AutoscaleReport = ReturnType<typeof buildAutoscaleReport>;

/** Writes `<dir>/autoscale-<timestamp>.json` and `<dir>/autoscale-latest.json` (and `extra`). */
export function writeAutoscaleReport(
  report: AutoscaleReport,
  dir: string,
  extra?: string,
): string[] {
  return writeJsonReport(report, dir, { prefix: 'autoscale-' }, extra);
}

const fmt = (n: number | null | undefined, digits = 1) =>
  n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits);
const secs = (ms: number | null | undefined) =>
  fmt(ms === null || ms === undefined ? ms : ms / 1000, 2);

export function formatAutoscaleTable(report: AutoscaleReport): string {
  const p = report.parameters;
  const runs = Object.values(report.runs);
  const rows: Array<[string, (r: RunResult) => string]> = [
    ['workers at start', (r) => String(r.workersAtStart)],
    ['workers ready before the burst (s)', (r) => secs(r.fleetReadyMs)],
    ['makespan, first submit → last result (s)', (r) => secs(r.makespanMs)],
    ['throughput (tasks/s)', (r) => fmt(r.tasksPerSec, 1)],
    ['task total p50 (ms)', (r) => fmt(r.taskTotalMs.p50, 0)],
    ['task total p95 (ms)', (r) => fmt(r.taskTotalMs.p95, 0)],
    ['queue wait p50 (ms)', (r) => fmt(r.queueMs.p50, 0)],
    ['worker-seconds (to last result)', (r) => fmt(r.workerSeconds, 1)],
    ['mean / peak workers online', (r) => `${fmt(r.meanOnline, 2)} / ${r.peakOnline}`],
    ['first scale-up decision (s after submit)', (r) => secs(r.autoscale?.firstScaleUpMs)],
    [`${p.max} workers online (s after submit)`, (r) => secs(r.autoscale?.maxOnlineMs)],
    [`back at ${p.min} (s after last result)`, (r) => secs(r.autoscale?.backToMinMs)],
    ['worker-seconds until back at min', (r) => fmt(r.autoscale?.workerSecondsUntilMin, 1)],
    ['failed tasks', (r) => String(r.failed)],
  ];
  const header = ['', ...runs.map((r) => r.run)];
  const body = rows.map(([label, cell]) => [label, ...runs.map(cell)]);
  const { ratios } = report;
  const dirty = report.dirty ? ' (uncommitted changes)' : '';
  return [
    `flota autoscaling bench — commit ${report.commit}${dirty}, ${report.host.cpus} cores, node ${report.host.node}`,
    `${p.tasks} echo tasks of ${p.taskMs} ms at once, ${p.slots} slots per worker, pool ${p.min}–${p.max}, ` +
      `interval ${p.intervalMs} ms, cooldown up/down ${p.cooldownUpMs}/${p.cooldownDownMs} ms`,
    ...alignColumns(header, body),
    '',
    `autoscaled ÷ fixed-min makespan        ${fmt(ratios.makespanVsFixedMin, 2)}`,
    `autoscaled ÷ fixed-max makespan        ${fmt(ratios.makespanVsFixedMax, 2)}`,
    `autoscaled ÷ fixed-max worker-seconds  ${fmt(ratios.workerSecondsVsFixedMax, 2)}`,
  ].join('\n');
}
