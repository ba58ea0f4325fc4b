/**
 * What answers on a port we could not bind: enough to tell a person "an MQTT
 * broker answers on 1883" instead of "EADDRINUSE". Loopback only, bounded in
 * time, two connections at most, and nothing is left open afterwards.
 */
import { connect, createServer, type Socket } from 'node:net';

/**
 * - `mqtt`: answered an MQTT CONNECT with a CONNACK (any return code)
 * - `flota`: an HTTP server whose /healthz answers as a flota master's does
 * - `http`: any other HTTP/1 server
 * - `http2`: an HTTP/2 server (gRPC servers are)
 * - `tls`: a TLS server (mqtts, https, gRPC over TLS)
 * - `other`: accepts connections but speaks none of those
 * - `unknown`: not probed (HOST is not this machine's loopback) or nobody answered
 */
export type Listener = 'mqtt' | 'flota' | 'http' | 'http2' | 'tls' | 'other' | 'unknown';

export interface ProbeOptions {
  /** Budget for the whole probe; both connections run at once. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 1_000;
/** Enough of an answer to classify it; nothing more is read. */
const MAX_READ_BYTES = 512;

/**
 * An MQTT 3.1.1 CONNECT (clean session, keep-alive 0, client id
 * "flota-port-probe"): fixed bytes, so the probe needs no MQTT library.
 */
const MQTT_CONNECT = Buffer.from([
  0x10,
  0x1c,
  0x00,
  0x04,
  0x4d,
  0x51,
  0x54,
  0x54,
  0x04,
  0x02,
  0x00,
  0x00,
  0x00,
  0x10,
  ...Buffer.from('flota-port-probe', 'ascii'),
]);

/** The address a probe dials for a listener bound to `host`, or undefined if that is not loopback. */
export function loopbackFor(host: string): string | undefined {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === '0.0.0.0' || h === '' || h === 'localhost' || /^127(\.\d{1,3}){3}$/.test(h)) {
    return h.startsWith('127.') ? h : '127.0.0.1';
  }
  if (h === '::' || h === '::1') return '::1';
  return undefined;
}

/** Sends `request` and resolves with the first bytes that come back (empty if none in time). */
function firstBytes(host: string, port: number, request: Buffer, timeoutMs: number) {
  return new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let socket: Socket | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(Buffer.concat(chunks).subarray(0, MAX_READ_BYTES));
    };
    const timer = setTimeout(finish, timeoutMs);
    socket = connect({ host, port }, () => socket?.write(request));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // An HTTP answer may come in pieces; the body of /healthz is what tells flota apart.
      const text = Buffer.concat(chunks).toString('latin1');
      if (!text.startsWith('HTTP/') || text.includes('}') || text.length >= MAX_READ_BYTES) {
        finish();
      }
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}

/** Classifies an answer to the MQTT CONNECT or the HTTP request. */
export function classifyAnswer(answer: Buffer): Listener | undefined {
  if (answer.length === 0) return undefined;
  // CONNACK: packet type 2, remaining length 2 (MQTT 3.1.1) or more (MQTT 5).
  if (answer[0] === 0x20) return 'mqtt';
  const text = answer.toString('latin1');
  if (text.startsWith('HTTP/')) {
    return /^HTTP\/1\.\d 200/.test(text) && text.includes('{"ok":true}') ? 'flota' : 'http';
  }
  // An HTTP/2 frame header: 24-bit length, then type SETTINGS (4) or GOAWAY (7).
  if (answer.length >= 9 && (answer[3] === 0x04 || answer[3] === 0x07)) return 'http2';
  // A TLS record: alert (21) or handshake (22), version 3.x.
  if ((answer[0] === 0x15 || answer[0] === 0x16) && answer[1] === 0x03) return 'tls';
  return 'other';
}

/**
 * What listens on `port` for a listener that wanted to bind `host`. Probes
 * only loopback: a HOST that is another machine's address is never dialled.
 */
export async function probePort(
  host: string,
  port: number,
  options: ProbeOptions = {},
): Promise<Listener> {
  const dial = loopbackFor(host);
  if (dial === undefined) return 'unknown';
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const httpRequest = Buffer.from(
    `GET /healthz HTTP/1.0\r\nHost: ${dial.includes(':') ? `[${dial}]` : dial}:${port}\r\n\r\n`,
  );
  // An MQTT broker drops an HTTP request, an HTTP server answers a CONNECT with 400: ask both.
  const [mqtt, http] = await Promise.all([
    firstBytes(dial, port, MQTT_CONNECT, timeoutMs),
    firstBytes(dial, port, httpRequest, timeoutMs),
  ]);
  const kinds = [classifyAnswer(mqtt), classifyAnswer(http)];
  for (const kind of ['mqtt', 'flota', 'http', 'http2', 'tls', 'other'] as const) {
    if (kinds.includes(kind)) return kind;
  }
  return 'unknown';
}

/** A port near `port` that `host` can bind right now, to suggest instead; undefined if none of the next few. */
export async function nearbyFreePort(
  host: string,
  port: number,
  tries = 20,
): Promise<number | undefined> {
  for (let candidate = port + 1; candidate <= Math.min(65_535, port + tries); candidate++) {
    if (await canBind(host, candidate)) return candidate;
  }
  return undefined;
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
