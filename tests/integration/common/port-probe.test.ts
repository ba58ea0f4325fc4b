/** What answers on a taken port, told apart on loopback with real servers. */
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { loopbackFor, nearbyFreePort, probePort } from '../../../common/port-probe.ts';
import { startMosquitto } from '../../helpers/mosquitto-server.ts';

const servers: Array<{ close(): unknown }> = [];
afterAll(async () => {
  for (const server of servers) await server.close();
});

async function listening(server: Server): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

describe('probePort', () => {
  it('recognises an MQTT broker', async () => {
    const mosquitto = await startMosquitto();
    servers.push({ close: () => mosquitto.stop() });
    expect(await probePort('127.0.0.1', mosquitto.port)).toBe('mqtt');
  });

  it('recognises an HTTP server, and a flota master by its /healthz', async () => {
    const plain = await listening(createHttpServer((_req, res) => res.end('hello')));
    expect(await probePort('0.0.0.0', plain)).toBe('http');
    const flota = await listening(
      createHttpServer((req, res) =>
        req.url === '/healthz' ? res.end('{"ok":true}') : res.writeHead(404).end(),
      ),
    );
    expect(await probePort('127.0.0.1', flota)).toBe('flota');
  });

  it('recognises an HTTP/2 server (what gRPC speaks)', async () => {
    const server = createHttp2Server();
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    expect(await probePort('127.0.0.1', (server.address() as { port: number }).port)).toBe('http2');
  });

  it('calls a listener that never answers "unknown", within its time budget', async () => {
    const sockets = new Set<Socket>();
    const port = await listening(createTcpServer((s) => sockets.add(s)));
    const t0 = Date.now();
    expect(await probePort('127.0.0.1', port, { timeoutMs: 300 })).toBe('unknown');
    expect(Date.now() - t0).toBeLessThan(2_000);
    for (const s of sockets) s.destroy();
  });

  it('never dials an address that is not loopback', async () => {
    expect(loopbackFor('192.0.2.10')).toBeUndefined();
    expect(await probePort('192.0.2.10', 80, { timeoutMs: 5_000 })).toBe('unknown');
    expect(loopbackFor('::')).toBe('::1');
    expect(loopbackFor('127.0.0.2')).toBe('127.0.0.2');
  });

  it('suggests a nearby port that binds', async () => {
    const taken = await listening(createTcpServer());
    const free = await nearbyFreePort('127.0.0.1', taken);
    expect(free).toBeGreaterThan(taken);
  });
});
