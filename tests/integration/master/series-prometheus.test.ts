/**
 * The series older than the master's memory, read from Prometheus: against
 * a small HTTP server speaking Prometheus's `query_range` JSON, the queries
 * flota asks (its metric names, a step giving at most 1,000 points), the
 * answers mapped into SeriesPoints, refusals and bad answers as
 * PrometheusError; and through a real master's GET /api/series, older points
 * from Prometheus followed by the master's own.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  MAX_POINTS,
  PrometheusError,
  PrometheusSeries,
} from '../../../master/src/monitor/prometheus-series.ts';
import { type SeriesResponse, seriesResponseSchema } from '../../../proto/src/schemas/console.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster } from './support.ts';

const HOUR = 3_600_000;

/** What the fake Prometheus answers for a query, by what the query names. */
function valuesFor(query: string): Array<{ metric: Record<string, string>; value: string }> {
  if (query.includes('outcome="completed"')) return [{ metric: {}, value: '30' }];
  if (query.includes('outcome="failed"')) return [{ metric: {}, value: '3' }];
  if (query.includes('flota_model_ttft_seconds_bucket')) return [{ metric: {}, value: 'NaN' }];
  if (query.includes('histogram_quantile(0.95')) return [{ metric: {}, value: '1500' }];
  if (query.includes('histogram_quantile(0.5')) return [{ metric: {}, value: '800.5' }];
  if (query.includes('flota_queue_jobs')) {
    return [
      { metric: { queue: 'tasks.any.echo' }, value: '4' },
      { metric: { queue: 'tasks.gpu.llama3~8b' }, value: '1' },
    ];
  }
  if (query.includes('kind="total"')) return [{ metric: {}, value: '8' }];
  if (query.includes('kind="active"')) return [{ metric: {}, value: '2' }];
  if (query.includes('flota_workers')) return [{ metric: {}, value: '2' }];
  return [];
}

interface Asked {
  query: string;
  start: number;
  end: number;
  step: number;
}

let prometheus: Server;
let prometheusUrl: string;
const asked: Asked[] = [];
/** How the fake answers: a real range, a Prometheus error, a proxy's 502 page, or another shape. */
let mode: 'ok' | 'error' | 'html' | 'shape' = 'ok';

beforeAll(async () => {
  prometheus = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/prom/api/v1/query_range') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const params = {
      query: url.searchParams.get('query') ?? '',
      start: Number(url.searchParams.get('start')),
      end: Number(url.searchParams.get('end')),
      step: Number(url.searchParams.get('step')),
    };
    asked.push(params);
    res.setHeader('content-type', 'application/json');
    if (mode === 'html') {
      res.statusCode = 502;
      res.setHeader('content-type', 'text/html');
      res.end('<html>bad gateway</html>');
      return;
    }
    if (mode === 'error') {
      res.statusCode = 400;
      res.end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error' }));
      return;
    }
    if (mode === 'shape') {
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }));
      return;
    }
    const instants: number[] = [];
    for (let t = params.start; t <= params.end; t += params.step) instants.push(t);
    const result = valuesFor(params.query).map(({ metric, value }) => ({
      metric,
      values: instants.map((t) => [t, value]),
    }));
    res.end(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result } }));
  });
  prometheus.listen(0, '127.0.0.1');
  await once(prometheus, 'listening');
  prometheusUrl = `http://127.0.0.1:${(prometheus.address() as AddressInfo).port}/prom`;
});

afterAll(() => {
  prometheus?.closeAllConnections();
  prometheus?.close();
});

describe('PrometheusSeries', () => {
  it('asks for flota’s metrics with a step that gives at most 1,000 points, and maps the answers', async () => {
    mode = 'ok';
    asked.length = 0;
    const to = Date.parse('2026-01-01T06:00:00Z');
    const from = to - 6 * HOUR;
    const points = await new PrometheusSeries({ url: prometheusUrl }).range(from, to);

    const step = 22; // 21,600 s in at most 1,000 steps
    expect(new Set(asked.map((a) => a.step))).toEqual(new Set([step]));
    const queries = asked.map((a) => a.query);
    for (const name of [
      'flota_tasks_total',
      'flota_task_total_seconds_bucket',
      'flota_model_ttft_seconds_bucket',
      'flota_queue_jobs',
      'flota_fleet_slots',
      'flota_workers',
    ]) {
      expect(
        queries.some((q) => q.includes(name)),
        name,
      ).toBe(true);
    }
    expect(queries).toContain('sum(increase(flota_tasks_total{outcome="completed"}[22s]))');

    expect(points.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(points.length).toBeGreaterThan(MAX_POINTS - 20);
    expect(points[0]?.at).toBeGreaterThanOrEqual(from - step * 1000);
    expect(points.at(-1)?.at).toBeLessThanOrEqual(to);
    expect(points[1]).toEqual({
      at: (points[0]?.at ?? 0) + step * 1000,
      seconds: step,
      completed: 30,
      failed: 3,
      retried: 0,
      latencyP50Ms: 800.5,
      latencyP95Ms: 1500,
      queued: { 'tasks.any.echo': 4, 'tasks.gpu.llama3~8b': 1 },
      slots: 8,
      busy: 2,
      workersOnline: 2,
    });
  });

  it('never asks for steps finer than the scrape interval', async () => {
    mode = 'ok';
    asked.length = 0;
    const to = Date.parse('2026-01-01T06:00:00Z');
    const points = await new PrometheusSeries({ url: prometheusUrl }).range(to - 60_000, to);
    expect(asked[0]?.step).toBe(15);
    expect(points.map((p) => p.at)).toEqual([45, 30, 15, 0].map((s) => to - s * 1000 - 15_000));
  });

  it('turns a refusal, a proxy page, another shape or no answer into a PrometheusError', async () => {
    const series = new PrometheusSeries({ url: prometheusUrl });
    const to = Date.now();
    mode = 'error';
    await expect(series.range(to - HOUR, to)).rejects.toThrow(
      new PrometheusError('Prometheus refused a query: parse error'),
    );
    mode = 'html';
    await expect(series.range(to - HOUR, to)).rejects.toThrow(/HTTP 502/);
    mode = 'shape';
    await expect(series.range(to - HOUR, to)).rejects.toThrow(/unexpected shape/);
    mode = 'ok';
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    await expect(
      new PrometheusSeries({ url: `http://127.0.0.1:${port}` }).range(to - HOUR, to),
    ).rejects.toThrow(/Prometheus unreachable/);
  });
});

describe('GET /api/series with PROMETHEUS_URL', () => {
  let redis: RedisServer;
  let master: MasterHandle;

  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({
      queueUrl: redis.url,
      env: { PROMETHEUS_URL: prometheusUrl },
    });
  }, 60_000);

  afterAll(async () => {
    await master?.close();
    await redis?.stop();
  });

  it('answers older points from Prometheus, then the master’s own', async () => {
    mode = 'ok';
    await waitFor(
      async () => {
        const { body } = await api<SeriesResponse>(master, '/api/series');
        return body.points.filter((p) => p.seconds === undefined).length >= 2;
      },
      { what: 'two points in memory' },
    );
    const from = Date.now() - 2 * HOUR;
    const answer = await api<SeriesResponse>(master, `/api/series?from=${from}`);
    expect(answer.status).toBe(200);
    const body = seriesResponseSchema.parse(answer.body);
    expect(body.gap).toBeUndefined();
    const older = body.points.filter((p) => p.seconds !== undefined);
    const own = body.points.filter((p) => p.seconds === undefined);
    expect(older.length).toBeGreaterThan(400);
    expect(own.length).toBeGreaterThanOrEqual(2);
    expect(body.points.slice(0, older.length)).toEqual(older);
    expect((older.at(-1)?.at ?? 0) + (older.at(-1)?.seconds ?? 0) * 1000).toBeLessThanOrEqual(
      own[0]?.at ?? 0,
    );
    expect(older[0]).toMatchObject({ completed: 30, workersOnline: 2 });

    const csv = await (await fetch(`${master.httpUrl}/api/series?format=csv&from=${from}`)).text();
    expect(csv.split('\r\n')[0]).toContain('queued:tasks.gpu.llama3~8b');
  });

  it('answers its own points and says why when Prometheus fails', async () => {
    mode = 'html';
    const answer = await api<SeriesResponse>(master, `/api/series?from=${Date.now() - 2 * HOUR}`);
    expect(answer.status).toBe(200);
    const body = seriesResponseSchema.parse(answer.body);
    expect(body.gap).toMatch(/HTTP 502/);
    expect(body.points.length).toBeGreaterThanOrEqual(2);
    expect(body.points.every((p) => p.seconds === undefined)).toBe(true);
    mode = 'ok';
  });

  it('asks Prometheus nothing for a range memory holds', async () => {
    asked.length = 0;
    const answer = await api<SeriesResponse>(master, `/api/series?from=${Date.now() - 1_500}`);
    expect(answer.status).toBe(200);
    expect(asked).toEqual([]);
  });
});
