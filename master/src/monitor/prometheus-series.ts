/**
 * The series older than the master's memory, read back from the Prometheus
 * that scrapes it (PROMETHEUS_URL): one `query_range` per measure over
 * flota's own metrics, merged into SeriesPoints of `step` seconds each (at
 * most MAX_POINTS). With several masters, counters are summed over them and
 * what each sees of the whole fleet (workers, slots, queues) is taken once.
 * Prometheus has no retry count: `retried` is 0 in these points.
 */
import { z } from 'zod';
import { FlotaError } from '../../../common/errors.ts';
import type { SeriesPoint } from '../../../proto/src/schemas/console.ts';

/** Points one range gives at most. */
export const MAX_POINTS = 1_000;
/** No finer than the scrape interval deploy/monitoring/prometheus.yml sets. */
export const MIN_STEP_S = 15;
/** Rates and quantiles look back at least this far, so a few scrapes are in each. */
const MIN_RATE_WINDOW_S = 60;

const QUEUED = 'flota_queue_jobs{state=~"waiting|prioritized|delayed"}';

/** The PromQL of each measure; `$w` is the rate window. */
const QUERIES = {
  completed: 'sum(increase(flota_tasks_total{outcome="completed"}[$s]))',
  failed: 'sum(increase(flota_tasks_total{outcome="failed"}[$s]))',
  latencyP50Ms:
    'histogram_quantile(0.5, sum by (le) (rate(flota_task_total_seconds_bucket[$w]))) * 1000',
  latencyP95Ms:
    'histogram_quantile(0.95, sum by (le) (rate(flota_task_total_seconds_bucket[$w]))) * 1000',
  ttftP50Ms:
    'histogram_quantile(0.5, sum by (le) (rate(flota_model_ttft_seconds_bucket[$w]))) * 1000',
  queued: `sum by (queue) (max by (queue, state) (${QUEUED}))`,
  slots: 'max(flota_fleet_slots{kind="total"})',
  busy: 'sum(flota_fleet_slots{kind="active"})',
  workersOnline: 'max(flota_workers{state="online"})',
} as const;
type Measure = keyof typeof QUERIES;

/** Prometheus's answer to `GET /api/v1/query_range`. */
const queryRangeSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.object({
      resultType: z.literal('matrix'),
      result: z.array(
        z.object({
          metric: z.record(z.string(), z.string()),
          values: z.array(z.tuple([z.number(), z.string()])),
        }),
      ),
    }),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string() }),
]);
type Matrix = Extract<z.infer<typeof queryRangeSchema>, { status: 'success' }>['data']['result'];

/** Prometheus could not be asked, or answered something else than a range. */
export class PrometheusError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('prometheus_unavailable', message, options);
  }
}

export interface PrometheusSeriesOptions {
  /** Prometheus's base URL, e.g. http://prometheus:9090 */
  url: string;
  /** One query's limit. Default 10 s. */
  timeoutMs?: number;
}

/** The step (s) that covers [fromMs, toMs] in at most MAX_POINTS points. */
export function stepFor(fromMs: number, toMs: number): number {
  return Math.max(MIN_STEP_S, Math.ceil((toMs - fromMs) / 1000 / MAX_POINTS));
}

export class PrometheusSeries {
  private readonly timeoutMs: number;

  constructor(private readonly options: PrometheusSeriesOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * Points whose seconds fall in [fromMs, toMs], oldest first; each covers
   * `step` seconds ending at a whole multiple of the step.
   */
  async range(fromMs: number, toMs: number): Promise<SeriesPoint[]> {
    if (toMs <= fromMs) return [];
    const step = stepFor(fromMs, toMs);
    // Evaluation instants: the end of each point's span, aligned to the step.
    const start = (Math.floor(fromMs / 1000 / step) + 1) * step;
    const end = Math.floor(toMs / 1000 / step) * step;
    if (end < start) return [];
    const window = `${Math.max(step, MIN_RATE_WINDOW_S)}s`;
    const measures = Object.keys(QUERIES) as Measure[];
    const matrices = await Promise.all(
      measures.map((m) =>
        this.query(
          QUERIES[m].replaceAll('$s', `${step}s`).replaceAll('$w', window),
          start,
          end,
          step,
        ),
      ),
    );
    const points = new Map<number, SeriesPoint>();
    const pointAt = (t: number): SeriesPoint => {
      let point = points.get(t);
      if (!point) {
        point = {
          at: (t - step) * 1000,
          completed: 0,
          failed: 0,
          retried: 0,
          queued: {},
          slots: 0,
          busy: 0,
          workersOnline: 0,
          seconds: step,
        };
        points.set(t, point);
      }
      return point;
    };
    for (let t = start; t <= end; t += step) pointAt(t);
    measures.forEach((measure, i) => {
      for (const series of matrices[i] as Matrix) {
        for (const [t, text] of series.values) {
          const value = Number(text);
          if (!Number.isFinite(value)) continue; // NaN: no task in the window
          const point = pointAt(t);
          if (measure === 'queued') {
            const queue = series.metric.queue;
            if (queue !== undefined) point.queued[queue] = Math.round(value);
          } else if (
            measure === 'latencyP50Ms' ||
            measure === 'latencyP95Ms' ||
            measure === 'ttftP50Ms'
          ) {
            point[measure] = value;
          } else point[measure] = Math.round(value);
        }
      }
    });
    return [...points.values()].sort((a, b) => a.at - b.at);
  }

  private async query(promql: string, start: number, end: number, step: number): Promise<Matrix> {
    const url = new URL('api/v1/query_range', this.options.url.replace(/\/?$/, '/'));
    url.searchParams.set('query', promql);
    url.searchParams.set('start', String(start));
    url.searchParams.set('end', String(end));
    url.searchParams.set('step', String(step));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let json: unknown;
    try {
      const res = await fetch(url, { signal: controller.signal });
      json = await res.json().catch(() => undefined);
      if (!res.ok && json === undefined)
        throw new PrometheusError(`Prometheus answered HTTP ${res.status}`);
    } catch (err) {
      if (err instanceof PrometheusError) throw err;
      const reason = controller.signal.aborted
        ? `no answer within ${this.timeoutMs} ms`
        : String((err as Error).cause ?? err);
      throw new PrometheusError(`Prometheus unreachable: ${reason}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    const parsed = queryRangeSchema.safeParse(json);
    if (!parsed.success) throw new PrometheusError('Prometheus answered an unexpected shape');
    if (parsed.data.status === 'error') {
      throw new PrometheusError(`Prometheus refused a query: ${parsed.data.error}`);
    }
    return parsed.data.data.result;
  }
}
