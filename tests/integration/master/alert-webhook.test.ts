/**
 * Alert webhook deliveries to a real HTTP server on loopback: each carries a
 * signature the receiver can check with the shared secret; deliveries keep
 * their order; 5xx and 429 are tried again until the server takes them; a
 * delivery is given up after its tries, and a 4xx at once.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertWebhook, signatureOf } from '../../../master/src/alerts/webhook.ts';
import {
  ALERT_SIGNATURE_HEADER,
  ALERT_TIMESTAMP_HEADER,
  type Alert,
  alertWebhookBodySchema,
} from '../../../proto/src/schemas/console.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const SECRET = 'webhook-secret-0123456789';
const FAST = { baseMs: 5, maxMs: 20 };

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server | undefined;
let webhook: AlertWebhook | undefined;

/** A receiver answering each request with the next status of `statuses` (then 204). */
async function receiver(statuses: number[] = []): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 204;
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/flota`, received };
}

const alert = (subject: string, state: Alert['state'] = 'firing'): Alert => ({
  id: `backlog:${subject}`,
  rule: 'backlog',
  subject,
  state,
  severity: 'warning',
  message: `150 tasks queued in ${subject}, more than 100`,
  value: 150,
  firedAt: 1_767_225_600_000,
  ...(state === 'resolved' && { resolvedAt: 1_767_225_660_000 }),
});

afterEach(async () => {
  webhook?.close();
  webhook = undefined;
  if (server) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
  server = undefined;
});

describe('AlertWebhook', () => {
  it('signs each delivery so the receiver can check it, and keeps their order', async () => {
    const { url, received } = await receiver();
    webhook = new AlertWebhook({
      url,
      secret: SECRET,
      fleet: 'prod-eu',
      log: pino({ level: 'silent' }),
    });
    webhook.send(alert('all'));
    webhook.send(alert('all', 'resolved'));
    await waitFor(() => received.length === 2, { what: 'two deliveries' });

    for (const { headers, body } of received) {
      expect(headers['content-type']).toBe('application/json');
      const timestamp = String(headers[ALERT_TIMESTAMP_HEADER.toLowerCase()]);
      expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(30);
      // What a receiver does: recompute the HMAC over "<timestamp>.<body>" and compare.
      expect(headers[ALERT_SIGNATURE_HEADER.toLowerCase()]).toBe(
        signatureOf(SECRET, timestamp, body),
      );
      expect(signatureOf('another-secret-0123456789', timestamp, body)).not.toBe(
        headers[ALERT_SIGNATURE_HEADER.toLowerCase()],
      );
    }
    const bodies = received.map((r) => alertWebhookBodySchema.parse(JSON.parse(r.body)));
    expect(bodies.map((b) => [b.fleet, b.alert.id, b.alert.state])).toEqual([
      ['prod-eu', 'backlog:all', 'firing'],
      ['prod-eu', 'backlog:all', 'resolved'],
    ]);
    expect(webhook.count('delivered')).toBe(2);
  });

  it('tries again after 500s and a 429 until the receiver takes it', async () => {
    const { url, received } = await receiver([500, 503, 429]);
    webhook = new AlertWebhook({
      url,
      secret: SECRET,
      fleet: 'f',
      log: pino({ level: 'silent' }),
      backoff: FAST,
    });
    webhook.send(alert('a'));
    webhook.send(alert('b'));
    await waitFor(() => webhook?.count('delivered') === 2, { what: 'both delivered' });
    const ids = received.map((r) => alertWebhookBodySchema.parse(JSON.parse(r.body)).alert.id);
    expect(ids).toEqual(['backlog:a', 'backlog:a', 'backlog:a', 'backlog:a', 'backlog:b']);
    expect(webhook.count('failed')).toBe(0);
  });

  it('gives a delivery up after its tries, a 4xx at once, and goes on with the next', async () => {
    const { url, received } = await receiver([500, 500, 500, 400]);
    webhook = new AlertWebhook({
      url,
      secret: SECRET,
      fleet: 'f',
      log: pino({ level: 'silent' }),
      backoff: FAST,
      tries: 3,
    });
    webhook.send(alert('a'));
    webhook.send(alert('b'));
    webhook.send(alert('c'));
    await waitFor(() => webhook?.count('delivered') === 1, { what: 'the third delivered' });
    expect(webhook.count('failed')).toBe(2);
    const ids = received.map((r) => alertWebhookBodySchema.parse(JSON.parse(r.body)).alert.id);
    expect(ids).toEqual(['backlog:a', 'backlog:a', 'backlog:a', 'backlog:b', 'backlog:c']);
  });

  it('gives up on an address nobody answers, and bounds what waits', async () => {
    // A port that was just free: connections are refused.
    const { url } = await receiver();
    server?.close();
    await once(server as Server, 'close');
    server = undefined;
    webhook = new AlertWebhook({
      url,
      secret: SECRET,
      fleet: 'f',
      log: pino({ level: 'silent' }),
      backoff: FAST,
      tries: 2,
      maxQueued: 3,
    });
    for (const subject of ['a', 'b', 'c', 'd', 'e']) webhook.send(alert(subject));
    expect(webhook.count('dropped')).toBe(2);
    expect(webhook.backlog).toBe(3);
    await waitFor(() => webhook?.count('failed') === 3, { what: 'all given up' });
    expect(webhook.backlog).toBe(0);
    expect(webhook.count('delivered')).toBe(0);
  });

  it('gives a try up after its timeout', async () => {
    server = createServer(() => {
      // Never answers.
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    webhook = new AlertWebhook({
      url: `http://127.0.0.1:${port}/`,
      secret: SECRET,
      fleet: 'f',
      log: pino({ level: 'silent' }),
      backoff: FAST,
      tries: 2,
      timeoutMs: 100,
    });
    webhook.send(alert('a'));
    await waitFor(() => webhook?.count('failed') === 1, { what: 'given up after two timeouts' });
  });
});
