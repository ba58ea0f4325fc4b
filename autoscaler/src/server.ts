/**
 * The autoscaler's own small HTTP surface: `/metrics` for Prometheus,
 * `/status` (every pool's last observation and decision, as JSON) and
 * `/healthz` for the orchestrator.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Autoscaler } from './autoscaler.ts';
import type { AutoscalerMetrics } from './metrics.ts';

export interface StatusServer {
  url: string;
  close(): Promise<void>;
}

export async function startStatusServer(
  autoscaler: Autoscaler,
  metrics: AutoscalerMetrics,
  host: string,
  port: number,
): Promise<StatusServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://autoscaler').pathname;
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return json(405, { error: 'only GET', code: 'method_not_allowed' });
    if (path === '/healthz') return json(200, { ok: true });
    if (path === '/status') return json(200, { pools: autoscaler.status() });
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => json(500, { error: String(err), code: 'metrics_failed' }),
      );
      return;
    }
    json(404, { error: 'no such route; try /status, /metrics or /healthz', code: 'not_found' });
  });
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
