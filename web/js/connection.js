/**
 * The Socket.IO link to the master: connection state for the header, the
 * session hello on every (re)connect, and task events handed to the app.
 */

/** Task events the chat store understands (see proto/src/socket-events.ts). */
export const TASK_EVENTS = [
  'task:queued',
  'task:assigned',
  'task:chunk',
  'task:completed',
  'task:failed',
];
/** Failed reconnect attempts after which the header says "offline" (it keeps retrying). */
const OFFLINE_AFTER_ATTEMPTS = 4;
const ACK_TIMEOUT_MS = 15_000;

/**
 * @typedef {'connecting' | 'connected' | 'reconnecting' | 'offline'} LinkState
 * @param {{
 *   io: (opts?: object) => any,
 *   sessionId: string,
 *   onState: (state: LinkState) => void,
 *   onHello: (reply: { workers: unknown[], models: string[] }) => void,
 *   onWorkers: (event: { workers: unknown[], models: string[] }) => void,
 *   onTaskEvent: (name: string, payload: unknown) => void,
 *   onProblem: (message: string) => void,
 * }} deps
 */
export function createConnection(deps) {
  const socket = deps.io({ reconnectionDelayMax: 5000 });
  let attempts = 0;

  const setState = (/** @type {LinkState} */ state) => deps.onState(state);
  setState('connecting');

  socket.on('connect', () => {
    attempts = 0;
    setState('connected');
    hello();
  });
  socket.on('disconnect', (/** @type {string} */ reason) => {
    // The server closed us on purpose; socket.io will not retry by itself.
    if (reason === 'io server disconnect') socket.connect();
    setState(navigator.onLine ? 'reconnecting' : 'offline');
  });
  socket.on('connect_error', () => {
    if (!socket.connected) setState(stateWhileDown());
  });
  socket.io.on('reconnect_attempt', (/** @type {number} */ n) => {
    attempts = n;
    setState(stateWhileDown());
  });
  socket.io.on('reconnect_failed', () => setState('offline'));
  window.addEventListener('offline', () => setState('offline'));
  window.addEventListener('online', () => {
    if (!socket.connected) setState('reconnecting');
  });

  for (const name of TASK_EVENTS) {
    socket.on(name, (/** @type {unknown} */ payload) => deps.onTaskEvent(name, payload));
  }
  socket.on('workers:update', (/** @type {any} */ event) => {
    if (event && Array.isArray(event.workers)) {
      deps.onWorkers({ workers: event.workers, models: stringList(event.models) });
    }
  });

  function stateWhileDown() {
    if (!navigator.onLine || attempts >= OFFLINE_AFTER_ATTEMPTS) return 'offline';
    return 'reconnecting';
  }

  function hello() {
    socket
      .timeout(ACK_TIMEOUT_MS)
      .emit(
        'session:hello',
        { sessionId: deps.sessionId },
        (/** @type {unknown} */ err, /** @type {any} */ reply) => {
          if (err) return deps.onProblem('The master did not answer the session greeting.');
          if (!reply?.ok) return deps.onProblem(reply?.error ?? 'The master refused the session.');
          deps.onHello({
            workers: Array.isArray(reply.workers) ? reply.workers : [],
            models: stringList(reply.models),
          });
        },
      );
  }

  /**
   * @param {Record<string, unknown>} payload
   * @returns {Promise<{ ok: true, taskId: string } | { ok: false, error: string }>}
   */
  function submit(payload) {
    return new Promise((resolve) => {
      socket
        .timeout(ACK_TIMEOUT_MS)
        .emit('task:submit', payload, (/** @type {unknown} */ err, /** @type {any} */ reply) => {
          if (err) {
            return resolve({ ok: false, error: 'The master did not confirm the task. Try again.' });
          }
          if (reply?.ok && typeof reply.taskId === 'string') {
            return resolve({ ok: true, taskId: reply.taskId });
          }
          resolve({ ok: false, error: String(reply?.error ?? 'The master rejected the task.') });
        });
    });
  }

  return { submit, isConnected: () => socket.connected };
}

/** @param {unknown} v @returns {string[]} */
function stringList(v) {
  return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
}
