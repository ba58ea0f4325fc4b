/**
 * API tokens, each standing for a tenant (API_TOKENS / API_TOKENS_FILE). With
 * tokens configured, every `/api` request must carry `Authorization: Bearer
 * <token>` and every Socket.IO connection `auth: { token }`; the caller's
 * tenant is its token's. Without tokens nothing is checked and everything
 * belongs to DEFAULT_TENANT, as before tenants existed. `/healthz`, `/readyz`,
 * `/metrics` and the web UI's files stay open either way.
 *
 * Tokens are compared by their SHA-256 digest (a map lookup reveals nothing
 * about a token's characters) and never logged.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Logger } from '../../../common/logger.ts';
import type { TenantToken } from '../config.ts';
import { DEFAULT_TENANT } from '../tasks/task-data.ts';

/** Longer "tokens" are refused unread. */
const MAX_TOKEN_CHARS = 4_096;
/** Sent with every 401, as RFC 6750 asks. */
export const AUTH_CHALLENGE = 'Bearer realm="flota"';

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

export class ApiAuth {
  private readonly tenants = new Map<string, string>();

  constructor(tokens: readonly TenantToken[]) {
    for (const { tenant, token } of tokens) this.tenants.set(digest(token), tenant);
  }

  /** False when no token is configured: no checks, one tenant. */
  get enabled(): boolean {
    return this.tenants.size > 0;
  }

  /** How many tenants hold a token. */
  get tenantCount(): number {
    return new Set(this.tenants.values()).size;
  }

  /** The tenant a presented token stands for; undefined when it is missing or unknown. */
  tenantOf(token: unknown): string | undefined {
    if (!this.enabled) return DEFAULT_TENANT;
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_CHARS) {
      return undefined;
    }
    return this.tenants.get(digest(token));
  }
}

/**
 * A session id is the client's; two tenants may pick the same one. Inside the
 * master a session is named per tenant so events and outboxes never mix.
 */
export function scopeSession(tenant: string, sessionId: string): string {
  return tenant === DEFAULT_TENANT ? sessionId : `${tenant}:${sessionId}`;
}

/** Express middleware for `/api`: sets the caller's tenant, or answers 401. */
export function requireApiToken(auth: ApiAuth, log: Logger): RequestHandler {
  if (auth.enabled) log.info({ tenants: auth.tenantCount }, 'API tokens required on /api');
  return (req, res, next) => {
    if (!auth.enabled) {
      res.locals.tenant = DEFAULT_TENANT;
      next();
      return;
    }
    const header = req.get('authorization');
    const bearer = header === undefined ? undefined : /^Bearer +(\S+) *$/i.exec(header)?.[1];
    const tenant = bearer === undefined ? undefined : auth.tenantOf(bearer);
    if (tenant !== undefined) {
      res.locals.tenant = tenant;
      next();
      return;
    }
    const error =
      header === undefined
        ? 'this API needs a token: send Authorization: Bearer <token>'
        : bearer === undefined
          ? 'the Authorization header must be "Bearer <token>"'
          : 'the API token is not valid';
    log.warn({ path: req.path, reason: error }, 'request refused');
    res.setHeader(
      'WWW-Authenticate',
      bearer === undefined ? AUTH_CHALLENGE : `${AUTH_CHALLENGE}, error="invalid_token"`,
    );
    res.status(401).json({ error, code: 'unauthorized' });
  };
}

/** The tenant requireApiToken set for this request. */
export function tenantOfResponse(res: Response): string {
  const tenant: unknown = res.locals.tenant;
  if (typeof tenant !== 'string') throw new Error('requireApiToken did not run for this route');
  return tenant;
}

/** What the Socket.IO middleware needs of a socket (typed loosely: any server's socket fits). */
interface HandshakeSocket {
  handshake: { auth: Record<string, unknown> };
  data: { tenant?: string };
}

/**
 * Socket.IO middleware (`io.use`): sets `socket.data.tenant`, or refuses the
 * connection; the client's `connect_error` carries a readable message and
 * `data.code = "unauthorized"`.
 */
export function socketTokenCheck(auth: ApiAuth, log: Logger) {
  return (socket: HandshakeSocket, next: (err?: Error) => void): void => {
    const token = socket.handshake.auth?.token;
    const tenant = auth.tenantOf(token);
    if (tenant !== undefined) {
      socket.data.tenant = tenant;
      next();
      return;
    }
    const message =
      token === undefined
        ? 'an API token is required: connect with auth: { token }'
        : 'the API token is not valid';
    log.warn({ reason: message }, 'socket refused');
    next(Object.assign(new Error(message), { data: { code: 'unauthorized' } }));
  };
}
