/**
 * The series as CSV: a header row, then one row per point; each queue that
 * appears in any point gets a `queued:<name>` column.
 */
import type { SeriesPoint } from '../../../proto/src/schemas/console.ts';
import { type CsvValue, toCsv } from './csv.ts';

const FIXED = [
  'at',
  'time',
  'seconds',
  'completed',
  'failed',
  'retried',
  'latencyP50Ms',
  'latencyP95Ms',
  'ttftP50Ms',
  'slots',
  'busy',
  'workersOnline',
] as const;

export function seriesCsv(points: readonly SeriesPoint[]): string {
  const queues = [...new Set(points.flatMap((p) => Object.keys(p.queued)))].sort();
  const rows = points.map((p) => {
    const row: Record<string, CsvValue> = {
      at: p.at,
      time: new Date(p.at).toISOString(),
      seconds: p.seconds ?? 1,
      completed: p.completed,
      failed: p.failed,
      retried: p.retried,
      latencyP50Ms: p.latencyP50Ms,
      latencyP95Ms: p.latencyP95Ms,
      ttftP50Ms: p.ttftP50Ms,
      slots: p.slots,
      busy: p.busy,
      workersOnline: p.workersOnline,
    };
    for (const queue of queues) row[`queued:${queue}`] = p.queued[queue] ?? 0;
    return row;
  });
  return toCsv<Record<string, CsvValue>>([...FIXED, ...queues.map((q) => `queued:${q}`)], rows);
}
