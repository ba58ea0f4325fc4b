/**
 * What the header says about the Socket.IO link: connecting, connected,
 * reconnecting, offline (no network, or several failed attempts; Socket.IO
 * keeps trying) or unauthorized (the master refused the handshake's token;
 * Socket.IO does not retry that, so the state stays until a new token).
 */

/** Failed reconnect attempts after which the header says "offline" (it keeps retrying). */
const OFFLINE_AFTER_ATTEMPTS = 4;
const REFUSED_TEXT = 'The master needs an access token.';

/**
 * @typedef {'connecting' | 'connected' | 'reconnecting' | 'offline' | 'unauthorized'} LinkState
 * @param {any} socket a Socket.IO client socket
 * @param {(state: LinkState, refusal?: string) => void} onState `refusal`: the master's reason, with 'unauthorized'
 */
export function watchLinkState(socket, onState) {
  let attempts = 0;
  /** Why the master refused the last handshake; '' when it did not. */
  let refusal = '';

  const set = (/** @type {LinkState} */ state) =>
    onState(state, state === 'unauthorized' ? refusal : undefined);
  /** @returns {LinkState} */
  const whileDown = () => {
    if (refusal) return 'unauthorized';
    if (!navigator.onLine || attempts >= OFFLINE_AFTER_ATTEMPTS) return 'offline';
    return 'reconnecting';
  };

  set('connecting');
  socket.on('connect', () => {
    attempts = 0;
    set('connected');
  });
  socket.on('disconnect', () => set(navigator.onLine ? 'reconnecting' : 'offline'));
  socket.on('connect_error', (/** @type {any} */ err) => {
    if (err?.data?.code === 'unauthorized') refusal = String(err.message || REFUSED_TEXT);
    if (!socket.connected) set(whileDown());
  });
  socket.io.on('reconnect_attempt', (/** @type {number} */ n) => {
    attempts = n;
    set(whileDown());
  });
  socket.io.on('reconnect_failed', () => set(refusal ? 'unauthorized' : 'offline'));
  window.addEventListener('offline', () => {
    if (!refusal) set('offline');
  });
  window.addEventListener('online', () => {
    if (!socket.connected) set(refusal ? 'unauthorized' : 'reconnecting');
  });

  return {
    /** A new handshake is under way (e.g. with another token): the refusal is history. */
    restart() {
      refusal = '';
      attempts = 0;
      set('connecting');
    },
  };
}
