/**
 * Which browser pages may call the API. A browser names the page that makes a
 * request in its Origin header; a page from the master's own origin (what the
 * chat UI is served from) or from one listed in CORS_ORIGINS may call the REST
 * API and open Socket.IO, any other page gets 403 and no CORS headers, so a
 * site a user happens to visit cannot drive their master. Requests without
 * Origin are not from a browser page (curl, the CLI, workers' tools) and go
 * on to authentication as usual.
 *
 * Without API tokens the master listens on loopback only, and the Host header
 * must name a loopback address too: a foreign site whose name was re-pointed
 * at 127.0.0.1 (DNS rebinding) would otherwise look same-origin.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import cors from 'cors';
import type { RequestHandler } from 'express';
import type { Logger } from '../../../common/logger.ts';
import { API_ERROR_CODES, RATE_LIMIT_HEADERS } from '../../../proto/src/http-api.ts';
import { isLoopbackHost } from '../config.ts';

/** What an Origin header says about the request. */
export type OriginVerdict = 'absent' | 'same' | 'listed' | 'foreign';

/** `https://App.Example.com:443/` → `https://app.example.com`; undefined when it is no http(s) origin. */
export function normalizeOrigin(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** The request as the origin check needs it. */
export interface OriginRequest {
  origin: string | undefined;
  host: string | undefined;
  /** The connection is TLS. */
  secure: boolean;
  /** X-Forwarded-Proto, as a TLS-terminating proxy sets it. */
  forwardedProto?: string;
}

/**
 * Pure judgement. Same origin: the Origin's host and port are the Host
 * header's, and its scheme is the connection's (or the one a TLS-terminating
 * proxy forwarded).
 */
export function judgeOrigin(req: OriginRequest, listed: ReadonlySet<string>): OriginVerdict {
  if (req.origin === undefined) return 'absent';
  const origin = normalizeOrigin(req.origin);
  if (origin === undefined) return 'foreign'; // "null" (sandboxed pages, files) or garbage
  if (listed.has(origin)) return 'listed';
  if (!req.host) return 'foreign';
  const schemes = new Set([req.secure ? 'https' : 'http']);
  const forwarded = req.forwardedProto?.split(',')[0]?.trim().toLowerCase();
  if (forwarded === 'http' || forwarded === 'https') schemes.add(forwarded);
  for (const scheme of schemes) {
    if (normalizeOrigin(`${scheme}://${req.host}`) === origin) return 'same';
  }
  return 'foreign';
}

/** The Host header names this machine (for a master without tokens: see the file comment). */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return true; // HTTP/1.0 without Host: not a browser
  try {
    return isLoopbackHost(new URL(`http://${host}`).hostname);
  } catch {
    return false;
  }
}

export interface OriginPolicyOptions {
  /** CORS_ORIGINS: pages of these origins may call the API too. */
  corsOrigins: readonly string[];
  /** No API tokens: the Host header must be a loopback name. */
  loopbackOnly: boolean;
  log: Logger;
}

/** Why a request is refused, or undefined when it may go on. */
export interface OriginPolicy {
  check(req: IncomingMessage): { verdict: OriginVerdict; refusal?: string };
  /** The listed origins, normalized. */
  readonly listed: ReadonlySet<string>;
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

export function createOriginPolicy(options: OriginPolicyOptions): OriginPolicy {
  const listed = new Set<string>();
  for (const entry of options.corsOrigins) {
    const origin = normalizeOrigin(entry.trim());
    if (origin) listed.add(origin);
    else options.log.warn({ origin: entry }, 'CORS_ORIGINS entry ignored: not an http(s) origin');
  }
  return {
    listed,
    check(req) {
      const host = header(req, 'host');
      const verdict = judgeOrigin(
        {
          origin: header(req, 'origin'),
          host,
          secure: Boolean((req.socket as TLSSocket).encrypted),
          forwardedProto: header(req, 'x-forwarded-proto'),
        },
        listed,
      );
      if (verdict === 'foreign') {
        return {
          verdict,
          refusal:
            'requests from this page’s origin are not allowed: open the UI from the master itself, or list the origin in CORS_ORIGINS',
        };
      }
      if (options.loopbackOnly && verdict !== 'listed' && !isLoopbackHostHeader(host)) {
        return {
          verdict,
          refusal:
            'this master answers only on its loopback address without API tokens (Host header refused)',
        };
      }
      return { verdict };
    },
  };
}

/**
 * Express middleware for `/api`: a foreign page gets 403 `{ error, code:
 * 'origin_refused' }` without CORS headers; a listed one gets CORS headers
 * (preflights answered here, before any token is asked for).
 */
export function guardOrigin(policy: OriginPolicy, log: Logger): RequestHandler {
  const allowListed = cors({
    origin: (origin, callback) =>
      callback(null, origin !== undefined && policy.listed.has(normalizeOrigin(origin) ?? '')),
    credentials: false,
    maxAge: 600,
    exposedHeaders: [...Object.values(RATE_LIMIT_HEADERS), 'Retry-After', 'Location'],
  });
  return (req, res, next) => {
    const { verdict, refusal } = policy.check(req);
    if (refusal) {
      log.warn(
        { path: req.path, origin: header(req, 'origin')?.slice(0, 200), verdict },
        'request refused: origin',
      );
      res.status(403).json({ error: refusal, code: API_ERROR_CODES.originRefused });
      return;
    }
    if (verdict === 'listed') return allowListed(req, res, next);
    next();
  };
}

/** Socket.IO `allowRequest`: the same rule for the handshake; the client's connect_error says why. */
export function socketOriginCheck(policy: OriginPolicy, log: Logger) {
  return (
    req: IncomingMessage,
    callback: (err: string | null | undefined, ok: boolean) => void,
  ) => {
    const { verdict, refusal } = policy.check(req);
    if (refusal) {
      log.warn({ origin: header(req, 'origin')?.slice(0, 200), verdict }, 'socket refused: origin');
      return callback(refusal, false);
    }
    callback(null, true);
  };
}
