/**
 * Shared by the REST/Socket.IO front suites: raw HTTP requests (any Host or
 * Origin header, every response header kept) and a Socket.IO connection
 * attempt that reports whether the master let it in.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { io, type Socket } from 'socket.io-client';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/**
 * node:http(s) rather than fetch: fetch will not send a Host header of our
 * choosing, nor trust a CA per request (`ca`, for an https master).
 */
export function raw(
  baseUrl: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; token?: string; ca?: string } = {},
): Promise<RawAnswer> {
  const request = baseUrl.startsWith('https:') ? httpsRequest : httpRequest;
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${baseUrl}${path}`,
      {
        method,
        ...(options.ca ? { ca: options.ca } : {}),
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => {
          let body: Record<string, unknown> = {};
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            body = { text };
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Opens a Socket.IO connection: the socket once connected, or why the master refused it. */
export function trySocket(
  baseUrl: string,
  options: { origin?: string; token?: string; transport?: 'websocket' | 'polling' } = {},
): Promise<{ socket?: Socket; refused?: string }> {
  const socket = io(baseUrl, {
    transports: [options.transport ?? 'websocket'],
    reconnection: false,
    ...(options.token ? { auth: { token: options.token } } : {}),
    ...(options.origin ? { extraHeaders: { origin: options.origin } } : {}),
  });
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ socket }));
    socket.once('connect_error', (err) => {
      socket.close();
      resolve({ refused: err.message });
    });
  });
}

/** Emits and waits for the ack (a refusal is an ack too). */
export function ask<T = Record<string, unknown>>(
  socket: Socket,
  event: string,
  payload: unknown,
): Promise<T> {
  return socket.timeout(10_000).emitWithAck(event, payload) as Promise<T>;
}

/** A submission no online worker can take (echo on a label nobody carries): it stays queued. */
export const STAYS_QUEUED = {
  model: 'echo',
  requires: { labels: { zone: 'nowhere' } },
  cache: false,
} as const;
