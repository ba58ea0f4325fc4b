/**
 * The console's live link: the master's `/console` Socket.IO namespace
 * (CONSOLE_NAMESPACE and CONSOLE_EVENTS of proto/src/console-events.ts).
 * Admin tokens only: a refused handshake (no token, a wrong one, or a
 * user's) is not retried until another token is set. After a reconnect the
 * handshake names the newest series point held, so the snapshot carries only
 * what was missed.
 */

const NAMESPACE = '/console';
/** CONSOLE_EVENTS of proto/src/console-events.ts. */
export const CONSOLE_EVENTS = {
  state: 'console:state',
  point: 'console:point',
  workers: 'console:workers',
  fleet: 'console:fleet',
  alerts: 'console:alerts',
};
/** Failed reconnect attempts after which the header says "offline" (it keeps retrying). */
const OFFLINE_AFTER_ATTEMPTS = 4;

/**
 * @typedef {'connecting' | 'connected' | 'reconnecting' | 'offline' | 'unauthorized' | 'forbidden'} ConsoleLinkState
 * @param {{
 *   io: (url: string, opts?: object) => any,
 *   token: string,
 *   since: () => number | undefined,
 *   onState: (state: ConsoleLinkState, reason?: string) => void,
 *   onEvent: (name: string, payload: unknown) => void,
 * }} deps
 */
export function createConsoleLink(deps) {
  let token = deps.token;
  let attempts = 0;
  /** Why the master refused the last handshake ('' when it did not). */
  let refusal = '';
  const socket = deps.io(NAMESPACE, {
    reconnectionDelayMax: 5000,
    auth: (/** @type {(auth: object) => void} */ cb) => cb(authOf(token, deps.since())),
  });

  socket.on('connect', () => {
    attempts = 0;
    refusal = '';
    deps.onState('connected');
  });
  socket.on('disconnect', (/** @type {string} */ reason) => {
    deps.onState(navigator.onLine ? 'reconnecting' : 'offline');
    if (reason === 'io server disconnect') socket.connect();
  });
  socket.on('connect_error', (/** @type {any} */ err) => {
    const code = err?.data?.code;
    if (code === 'unauthorized' || code === 'forbidden') {
      refusal = String(err.message || 'refused');
      deps.onState(code, refusal);
      return;
    }
    if (!socket.active) deps.onState('offline');
  });
  socket.io.on('reconnect_attempt', (/** @type {number} */ n) => {
    attempts = n;
    if (!refusal) deps.onState(attempts >= OFFLINE_AFTER_ATTEMPTS ? 'offline' : 'reconnecting');
  });
  for (const name of Object.values(CONSOLE_EVENTS)) {
    socket.on(name, (/** @type {unknown} */ payload) => deps.onEvent(name, payload));
  }
  deps.onState('connecting');

  return {
    /** Connects again with another token: a new handshake, so the master checks it. */
    setToken(/** @type {string} */ next) {
      token = next;
      refusal = '';
      attempts = 0;
      deps.onState('connecting');
      socket.disconnect().connect();
    },
  };
}

/** @param {string} token @param {number | undefined} since */
function authOf(token, since) {
  /** @type {Record<string, unknown>} */
  const auth = {};
  if (token) auth.token = token;
  if (since !== undefined) auth.since = since;
  return auth;
}
