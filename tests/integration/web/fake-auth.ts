/**
 * API tokens for the fake master: the real master's checks
 * (master/src/http/auth.ts), switched on and off by the test, recording what
 * the page presented so a test can tell what was sent.
 */
import type { RequestHandler } from 'express';
import pino from 'pino';
import { ApiAuth, requireApiToken, socketTokenCheck } from '../../../master/src/http/auth.ts';

type HandshakeCheck = ReturnType<typeof socketTokenCheck>;

export function tokenGate() {
  const log = pino({ level: 'silent' });
  let auth = new ApiAuth([]);
  /** `auth.token` of every Socket.IO handshake, in order (undefined: none sent). */
  const handshakes: unknown[] = [];
  /** The Authorization header of every /api request, in order. */
  const authorizations: Array<string | undefined> = [];

  const socket: HandshakeCheck = (s, next) => {
    handshakes.push(s.handshake.auth?.token);
    socketTokenCheck(auth, log)(s, next);
  };
  const rest: RequestHandler = (req, res, next) => {
    authorizations.push(req.get('authorization'));
    return requireApiToken(auth, log)(req, res, next);
  };

  return {
    socket,
    rest,
    handshakes,
    authorizations,
    /** From now on every handshake and /api request needs `token`; undefined: nothing is checked. */
    require(token: string | undefined) {
      auth = new ApiAuth(token ? [{ tenant: 'web', token }] : []);
    },
  };
}
