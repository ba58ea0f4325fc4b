/**
 * API tokens, each standing for a tenant and a role (API_TOKENS /
 * API_TOKENS_FILE). With tokens configured, every `/api` request must carry
 * `Authorization: Bearer <token>` and every Socket.IO connection
 * `auth: { token }`; the caller's tenant and role are its token's. A `user`
 * sees and changes only its own tenant's tasks; an `admin` sees every
 * tenant's and may manage the fleet (worker credentials, join tokens,
 * revocation). Without tokens (a master on loopback) nothing is checked:
 * one user, DEFAULT_TENANT, with the admin role. `/healthz`, `/readyz`,
 * `/metrics`, `/api/openapi.json` and the web UI's files stay open either way.
 *
 * Tokens are compared by their SHA-256 digest (a map lookup reveals nothing
 * about a token's characters) and never logged.
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../../../common/logger.ts';
import { API_ERROR_CODES } from '../../../proto/src/http-api.ts';
import type { ApiRole, TenantToken } from '../config.ts';
import { DEFAULT_TENANT } from '../tasks/task-data.ts';
import { ForbiddenError } from './errors.ts';

/** Longer "tokens" are refused unread. */
const MAX_TOKEN_CHARS = 4_096;
/** Sent with every 401, as RFC 6750 asks. */
export const AUTH_CHALLENGE = 'Bearer realm="flota"';

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

/** Who is calling: the token's tenant and role. */
export interface Caller {
  tenant: string;
  role: ApiRole;
}

/** Without tokens: the single local user, who may do everything. */
const LOCAL_CALLER: Caller = Object.freeze({ tenant: DEFAULT_TENANT, role: 'admin' });

/** A token as ApiAuth takes it; the role defaults to `user`. */
export type ApiToken = Omit<TenantToken, 'role'> & { role?: ApiRole };

export class ApiAuth {
  private readonly callers = new Map<string, Caller>();

  constructor(tokens: readonly ApiToken[]) {
    for (const { tenant, token, role = 'user' } of tokens) {
      this.callers.set(digest(token), Object.freeze({ tenant, role }));
    }
  }

  /** False when no token is configured: no checks, one tenant. */
  get enabled(): boolean {
    return this.callers.size > 0;
  }

  /** How many tenants hold a token. */
  get tenantCount(): number {
    return new Set([...this.callers.values()].map((c) => c.tenant)).size;
  }

  /** Who a presented token stands for; undefined when it is missing or unknown. */
  callerOf(token: unknown): Caller | undefined {
    if (!this.enabled) return LOCAL_CALLER;
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_CHARS) {
      return undefined;
    }
    return this.callers.get(digest(token));
  }

  /** The tenant a presented token stands for; undefined when it is missing or unknown. */
  tenantOf(token: unknown): string | undefined {
    return this.callerOf(token)?.tenant;
  }
}

/**
 * A session id is the client's; two tenants may pick the same one. Inside the
 * master a session is named per tenant so events and outboxes never mix.
 */
export function scopeSession(tenant: string, sessionId: string): string {
  return tenant === DEFAULT_TENANT ? sessionId : `${tenant}:${sessionId}`;
}

/** Why a request carries no usable token, and the challenge to send with the 401. */
interface Refusal {
  error: string;
  challenge: string;
}

function identify(auth: ApiAuth, req: Request): Caller | Refusal {
  if (!auth.enabled) return LOCAL_CALLER;
  const header = req.get('authorization');
  const bearer = header === undefined ? undefined : /^Bearer +(\S+) *$/i.exec(header)?.[1];
  const caller = bearer === undefined ? undefined : auth.callerOf(bearer);
  if (caller) return caller;
  return {
    error:
      header === undefined
        ? 'this API needs a token: send Authorization: Bearer <token>'
        : bearer === undefined
          ? 'the Authorization header must be "Bearer <token>"'
          : 'the API token is not valid',
    challenge: bearer === undefined ? AUTH_CHALLENGE : `${AUTH_CHALLENGE}, error="invalid_token"`,
  };
}

/**
 * Express middleware for `/api`: finds the caller (`res.locals.caller`), or
 * notes why there is none; refuseAnonymous answers that with 401. Split in
 * two so the rate limit between them counts refused requests too (by address).
 */
export function identifyCaller(auth: ApiAuth, log: Logger): RequestHandler {
  if (auth.enabled) log.info({ tenants: auth.tenantCount }, 'API tokens required on /api');
  return (req, res, next) => {
    const found = identify(auth, req);
    if ('role' in found) res.locals.caller = found;
    else res.locals.refusal = found;
    next();
  };
}

/** Answers 401 for a request identifyCaller found no caller for. */
export function refuseAnonymous(log: Logger): RequestHandler {
  return (req, res, next) => {
    const refusal = res.locals.refusal as Refusal | undefined;
    if (res.locals.caller) return next();
    const error = refusal?.error ?? 'this API needs a token: send Authorization: Bearer <token>';
    log.warn({ path: req.path, reason: error }, 'request refused');
    res.setHeader('WWW-Authenticate', refusal?.challenge ?? AUTH_CHALLENGE);
    res.status(401).json({ error, code: API_ERROR_CODES.unauthorized });
  };
}

/** identifyCaller and refuseAnonymous in one, for an app without a rate limit. */
export function requireApiToken(auth: ApiAuth, log: Logger): RequestHandler {
  const identifyIt = identifyCaller(auth, log);
  const refuse = refuseAnonymous(log);
  return (req, res, next) => identifyIt(req, res, () => refuse(req, res, next));
}

/** The caller identifyCaller set for this request, if any. */
export function callerOfResponse(res: Response): Caller | undefined {
  const caller: unknown = res.locals.caller;
  return caller && typeof caller === 'object' ? (caller as Caller) : undefined;
}

/** The caller of a route behind refuseAnonymous. */
function requiredCaller(res: Response): Caller {
  const caller = callerOfResponse(res);
  if (!caller) throw new Error('requireApiToken did not run for this route');
  return caller;
}

/** The tenant of the caller: where its submissions go. */
export function tenantOfResponse(res: Response): string {
  return requiredCaller(res).tenant;
}

/**
 * Whose tasks the caller may read and change: a user only its tenant's
 * (others read as absent), an admin everyone's (no tenant filter).
 */
export function taskScopeOf(res: Response): { tenant?: string } {
  const caller = requiredCaller(res);
  return caller.role === 'admin' ? {} : { tenant: caller.tenant };
}

/** Express middleware: only an admin token passes; a user's gets 403. */
export function requireAdmin(): RequestHandler {
  return (_req, res, next) => {
    if (requiredCaller(res).role === 'admin') return next();
    next(new ForbiddenError('this needs an admin token (API_TOKENS entry tenant:token:admin)'));
  };
}

/** What the Socket.IO middleware needs of a socket (typed loosely: any server's socket fits). */
interface HandshakeSocket {
  handshake: { auth: Record<string, unknown>; address?: string };
  data: { tenant?: string; role?: ApiRole };
}

/** A refused connection, as the audit trail records it (never the token). */
export interface SocketRefusal {
  from?: string;
  target: string;
  detail: string;
}

/**
 * Socket.IO middleware (`io.use`): sets `socket.data.tenant`, or refuses the
 * connection; the client's `connect_error` carries a readable message and
 * `data.code = "unauthorized"`.
 */
export function socketTokenCheck(
  auth: ApiAuth,
  log: Logger,
  onRefused?: (refusal: SocketRefusal) => void,
) {
  return (socket: HandshakeSocket, next: (err?: Error) => void): void => {
    const token = socket.handshake.auth?.token;
    const caller = auth.callerOf(token);
    if (caller) {
      socket.data.tenant = caller.tenant;
      socket.data.role = caller.role;
      next();
      return;
    }
    const message =
      token === undefined
        ? 'an API token is required: connect with auth: { token }'
        : 'the API token is not valid';
    log.warn({ reason: message }, 'socket refused');
    onRefused?.({
      from: socket.handshake.address?.slice(0, 128),
      target: 'Socket.IO connection',
      detail: `401 ${message}`,
    });
    next(Object.assign(new Error(message), { data: { code: API_ERROR_CODES.unauthorized } }));
  };
}
