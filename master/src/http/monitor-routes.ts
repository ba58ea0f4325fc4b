/**
 * Admin-only monitoring over REST: the live series (`/api/series`, JSON or
 * CSV) and the alerts (`/api/alerts`). Points the master no longer holds in
 * memory come from Prometheus when one is configured.
 */
import { Router } from 'express';
import { ValidationError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import {
  type AlertsResponse,
  SERIES_SECONDS,
  type SeriesPoint,
  type SeriesResponse,
  seriesQuerySchema,
} from '../../../proto/src/schemas/console.ts';
import type { AlertEngine } from '../alerts/alert-engine.ts';
import type { PrometheusSeries } from '../monitor/prometheus-series.ts';
import type { SeriesRecorder } from '../monitor/series.ts';
import { requireAdmin } from './auth.ts';
import { sendCsv } from './csv.ts';
import { seriesCsv } from './series-csv.ts';

export interface SeriesRoutesDeps {
  series: Pick<SeriesRecorder, 'points'>;
  /** Where points older than memory come from; absent without PROMETHEUS_URL. */
  archive?: Pick<PrometheusSeries, 'range'>;
  log: Logger;
}

/** Mounted on `/api/series`. */
export function seriesRoutes(deps: SeriesRoutesDeps): Router {
  const router = Router();
  router.use(requireAdmin());
  router.get('/', async (req, res) => {
    const parsed = seriesQuerySchema.safeParse(req.query);
    if (!parsed.success) throw new ValidationError(formatZodError(parsed.error));
    const query = parsed.data;
    const to = query.to ?? Date.now();
    const from = query.from ?? to - SERIES_SECONDS * 1000;
    if (from > to) throw new ValidationError('from: must not be after to');
    const kept = deps.series.points();
    const inMemory = kept.filter((p) => p.at >= from && p.at <= to);
    // Memory starts at its oldest point (or now, before the first one).
    const memoryFrom = kept[0]?.at ?? Date.now();
    let older: SeriesPoint[] = [];
    let gap: string | undefined;
    if (from < memoryFrom) {
      const olderTo = Math.min(to, memoryFrom - 1);
      const since = new Date(memoryFrom).toISOString();
      if (!deps.archive) {
        gap = `no points before ${since}: the master holds its last ${SERIES_SECONDS} s in memory; set PROMETHEUS_URL to read older ones`;
      } else {
        try {
          older = await deps.archive.range(from, olderTo);
        } catch (err) {
          gap = `no points before ${since}: ${(err as Error).message}`;
          deps.log.warn({ err: (err as Error).message }, 'older series unavailable');
        }
      }
    }
    const points = [...older, ...inMemory];
    res.setHeader('Cache-Control', 'no-store');
    if (query.format === 'csv') {
      sendCsv(res, 'flota-metrics.csv', seriesCsv(points));
      return;
    }
    const body: SeriesResponse = { from, to, points, ...(gap !== undefined && { gap }) };
    res.json(body);
  });
  return router;
}

/** Mounted on `/api/alerts`. */
export function alertRoutes(alerts: Pick<AlertEngine, 'current'>): Router {
  const router = Router();
  router.use(requireAdmin());
  router.get('/', (_req, res) => {
    const body: AlertsResponse = alerts.current();
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  });
  return router;
}
