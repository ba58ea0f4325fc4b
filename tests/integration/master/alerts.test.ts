/**
 * Alerts and the live series on a real master (Redis store, embedded
 * broker): tasks queued with no worker to take them fire `backlog`, seen on
 * GET /api/alerts and at a signed webhook; an echo worker drains the queue
 * and the alert resolves, both places again. GET /api/series counts the
 * completed tasks, as JSON and as CSV; /metrics has the alert counters.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureOf } from '../../../master/src/alerts/webhook.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  ALERT_SIGNATURE_HEADER,
  ALERT_TIMESTAMP_HEADER,
  type AlertsResponse,
  type AlertWebhookBody,
  alertsResponseSchema,
  alertWebhookBodySchema,
  type SeriesResponse,
  seriesResponseSchema,
} from '../../../proto/src/schemas/console.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

const SECRET = 'alerts-it-secret-0123456789';
const TASKS = 5;

let redis: RedisServer;
let receiver: Server;
let master: MasterHandle;
let worker: WorkerHandle | undefined;
/** Webhook deliveries whose signature checked out. */
const delivered: AlertWebhookBody[] = [];
let badSignatures = 0;

beforeAll(async () => {
  redis = await startRedis();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      const timestamp = String(req.headers[ALERT_TIMESTAMP_HEADER.toLowerCase()]);
      const signature = req.headers[ALERT_SIGNATURE_HEADER.toLowerCase()];
      if (signature === signatureOf(SECRET, timestamp, body)) {
        delivered.push(alertWebhookBodySchema.parse(JSON.parse(body)));
      } else badSignatures += 1;
      res.statusCode = 204;
      res.end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const { port } = receiver.address() as AddressInfo;
  master = await startTestMaster({
    queueUrl: redis.url,
    env: {
      ALERT_BACKLOG_TASKS: '2',
      ALERT_BACKLOG_SECONDS: '1',
      // Only the backlog is under test: no other rule may add deliveries.
      ALERT_NO_WORKER_SECONDS: '0',
      ALERT_WORKER_DOWN_SECONDS: '0',
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/alerts`,
      ALERT_WEBHOOK_SECRET: SECRET,
      FLEET_NAME: 'it-fleet',
    },
  });
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await master?.close();
  receiver?.closeAllConnections();
  receiver?.close();
  await redis?.stop();
});

const alerts = async () => {
  const answer = await api<AlertsResponse>(master, '/api/alerts');
  expect(answer.status).toBe(200);
  return alertsResponseSchema.parse(answer.body);
};

describe('alerts on a real master', () => {
  it('fires backlog while nobody takes the tasks, and resolves once a worker drains them', async () => {
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i++) {
      const submitted = await api<{ id: string }>(master, '/api/tasks', {
        body: { prompt: `backlog ${i}`, model: 'echo' },
      });
      expect(submitted.status).toBe(202);
      ids.push(submitted.body.id);
    }

    const firing = await waitFor(
      async () => (await alerts()).firing.find((a) => a.id === 'backlog:all'),
      { what: 'backlog firing on GET /api/alerts', timeoutMs: 20_000 },
    );
    expect(firing).toMatchObject({
      rule: 'backlog',
      subject: 'all',
      state: 'firing',
      value: TASKS,
    });
    await waitFor(() => delivered.some((d) => d.alert.id === 'backlog:all'), {
      what: 'the firing delivered to the webhook',
    });
    expect(delivered[0]).toMatchObject({
      fleet: 'it-fleet',
      alert: { id: 'backlog:all', state: 'firing' },
    });

    worker = await startTestWorker(master, { WORKER_ID: 'alerts-echo', ECHO_DELAY_MS: '0' });
    await waitFor(
      async () => {
        const states = await Promise.all(
          ids.map(
            async (id) => (await api<{ state: string }>(master, `/api/tasks/${id}`)).body.state,
          ),
        );
        return states.every((s) => s === 'completed');
      },
      { what: 'the queue drained', timeoutMs: 20_000 },
    );
    const resolved = await waitFor(
      async () => {
        const now = await alerts();
        return now.firing.length === 0 ? now.recent.find((a) => a.id === 'backlog:all') : undefined;
      },
      { what: 'backlog resolved on GET /api/alerts', timeoutMs: 20_000 },
    );
    expect(resolved.resolvedAt).toBeGreaterThanOrEqual(resolved.firedAt);
    await waitFor(() => delivered.length === 2, { what: 'the resolve delivered to the webhook' });
    expect(delivered.map((d) => `${d.alert.id} ${d.alert.state}`)).toEqual([
      'backlog:all firing',
      'backlog:all resolved',
    ]);
    expect(badSignatures).toBe(0);
  });

  it('answers the series with the completed tasks counted, as JSON and CSV', async () => {
    const series = await waitFor(
      async () => {
        const answer = await api<SeriesResponse>(master, '/api/series');
        expect(answer.status).toBe(200);
        const body = seriesResponseSchema.parse(answer.body);
        const completed = body.points.reduce((sum, p) => sum + p.completed, 0);
        return completed >= TASKS ? body : undefined;
      },
      { what: 'the completed tasks in the series' },
    );
    expect(series.points.some((p) => (p.queued['tasks.any.echo'] ?? 0) >= 3)).toBe(true);
    expect(series.points.at(-1)).toMatchObject({ workersOnline: 1 });
    // Nothing older than the master's memory without PROMETHEUS_URL: said, not invented.
    expect(series.gap).toMatch(/PROMETHEUS_URL/);
    for (let i = 1; i < series.points.length; i++) {
      expect(series.points[i]?.at).toBeGreaterThan(series.points[i - 1]?.at ?? 0);
    }

    const res = await fetch(`${master.httpUrl}/api/series?format=csv`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="flota-metrics.csv"');
    const [header, ...rows] = (await res.text()).trim().split('\r\n');
    expect(header?.split(',')).toEqual(
      expect.arrayContaining(['at', 'completed', 'failed', 'queued:tasks.any.echo']),
    );
    expect(rows.length).toBeGreaterThanOrEqual(series.points.length);

    const bad = await api(master, '/api/series?from=2&to=1');
    expect(bad.status).toBe(400);
    const unknown = await api(master, '/api/series?step=5');
    expect(unknown.status).toBe(400);
  });

  it('exports what fires and how deliveries went on /metrics', async () => {
    const text = await (await fetch(`${master.httpUrl}/metrics`)).text();
    expect(text).toMatch(/^flota_alerts_firing\{rule="backlog"\} 0$/m);
    expect(text).toMatch(/^flota_alert_webhook_deliveries_total\{outcome="delivered"\} 2$/m);
    expect(text).toMatch(/^flota_alert_webhook_deliveries_total\{outcome="failed"\} 0$/m);
  });
});
