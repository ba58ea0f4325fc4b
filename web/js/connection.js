/**
 * The Socket.IO link to the master: connection state for the header
 * (link-state.js), the
 * session hello on every (re)connect (with the outbox position and the tasks
 * still awaited), task events passed through the outbox cursor, and the
 * requests the page makes (submit, cancel, reprioritize, ack).
 *
 * Task events that arrive before the hello is answered are held until it is:
 * only the answer says which epoch their `outboxSeq` belongs to.
 *
 * A master with API tokens refuses a handshake without a valid `auth.token`
 * (`connect_error` with `data.code` "unauthorized"). Socket.IO does not retry
 * such a refusal, and neither does the link: it waits for `setToken`.
 */
import { watchLinkState } from './link-state.js';

/** Task events the chat store understands (inside a batch): TASK_EVENT_NAMES of proto/src/socket-events.ts (a unit test holds them equal). */
export const TASK_EVENTS = [
  'task:queued',
  'task:assigned',
  'task:chunk',
  'task:retrying',
  'task:completed',
  'task:failed',
];
/** TASK_EVENTS_BATCH of proto/src/socket-events.ts: the one message task events travel in. */
const TASK_EVENTS_BATCH = 'task:events';
const ACK_TIMEOUT_MS = 15_000;
/** MAX_PENDING_IN_HELLO of proto/src/socket-events.ts (a unit test holds them equal). */
const MAX_PENDING_IN_HELLO = 500;
/** Task events held before the hello answer; beyond this the link starts over and resumes. */
const MAX_EARLY_EVENTS = 5_000;
export const NOT_CONFIRMED_ERROR = 'The master did not confirm the task. Try again.';
const NOT_CONNECTED_ERROR = 'Not connected to the master; try again once it is back.';

/** @param {unknown} v @returns {v is Record<string, any>} */
const isObj = (v) => typeof v === 'object' && v !== null;

/**
 * @typedef {import('./link-state.js').LinkState} LinkState
 * @typedef {{ epoch: string, resumed: string, workers: unknown[], models: string[], fleet?: Record<string, any> }} Greeting
 * @param {{
 *   io: (opts?: object) => any,
 *   sessionId: string,
 *   cursor: ReturnType<typeof import('./outbox.js').createOutboxCursor>,
 *   pending: () => string[],
 *   token: string,
 *   onState: (state: LinkState, refusal?: string) => void,
 *   onHello: (reply: Greeting) => void,
 *   onWorkers: (event: { workers: unknown[], models: string[], fleet?: Record<string, any> }) => void,
 *   onTaskEvent: (name: string, payload: Record<string, any>) => void,
 *   onProblem: (message: string) => void,
 * }} deps
 */
export function createConnection(deps) {
  const socket = deps.io({ reconnectionDelayMax: 5000, auth: authOf(deps.token) });
  const linkState = watchLinkState(socket, deps.onState);
  /** Bumped on every connect, so an answer meant for an earlier connection is ignored. */
  let generation = 0;
  let greeted = false;
  /** @type {Array<[string, unknown]>} */
  let early = [];
  let ackedSeq = 0;
  /** Requests waiting for an answer on this connection; a disconnect loses them all. */
  const inflight = new Set();
  /** Callers waiting until the link is connected and greeted. */
  const readyWaiters = new Set();

  socket.on('connect', () => {
    generation += 1;
    hello();
  });
  socket.on('disconnect', (/** @type {string} */ reason) => {
    greeted = false;
    early = [];
    for (const lose of [...inflight]) lose();
    // The server closed us on purpose; socket.io will not retry by itself.
    if (reason === 'io server disconnect') socket.connect();
  });

  // The master sends task events in batches: every event of one turn of its loop, in order.
  socket.on(TASK_EVENTS_BATCH, (/** @type {unknown} */ batch) => {
    const events = isObj(batch) && Array.isArray(batch.events) ? batch.events : [];
    for (const event of events) {
      if (!isObj(event) || !TASK_EVENTS.includes(event.name)) continue;
      if (greeted) {
        intake(event.name, event.payload);
        continue;
      }
      early.push([event.name, event.payload]);
      if (early.length > MAX_EARLY_EVENTS) {
        early = [];
        socket.disconnect().connect();
        return;
      }
    }
  });
  socket.on('workers:update', (/** @type {any} */ event) => {
    if (event && Array.isArray(event.workers)) {
      deps.onWorkers({
        workers: event.workers,
        models: stringList(event.models),
        fleet: isObj(event.fleet) ? event.fleet : undefined,
      });
    }
  });

  /** @param {string} name @param {unknown} payload */
  function intake(name, payload) {
    // Not stamped, or at or below what was processed: malformed, a replay or a duplicate.
    if (!isObj(payload) || !deps.cursor.accept(payload.outboxSeq)) return;
    deps.onTaskEvent(name, payload);
  }

  function hello() {
    const gen = generation;
    const resume = deps.cursor.resume();
    /** @type {Record<string, unknown>} */
    const payload = { sessionId: deps.sessionId };
    if (resume) payload.resume = resume;
    const pending = deps.pending().slice(-MAX_PENDING_IN_HELLO);
    if (pending.length) payload.pending = pending;
    socket
      .timeout(ACK_TIMEOUT_MS)
      .emit('session:hello', payload, (/** @type {unknown} */ err, /** @type {any} */ reply) => {
        if (gen !== generation || !socket.connected) return;
        if (err) {
          deps.onProblem('The master did not answer the session greeting; asking again.');
          return hello();
        }
        if (!reply?.ok) return deps.onProblem(reply?.error ?? 'The master refused the session.');
        if (typeof reply.epoch !== 'string' || !reply.epoch) {
          return deps.onProblem('The master did not say which outbox epoch it is in.');
        }
        deps.cursor.greet(reply.epoch);
        // The resume position counts as acknowledged, within the epoch it names.
        ackedSeq = resume && resume.epoch === reply.epoch ? resume.lastSeq : 0;
        greeted = true;
        deps.onHello({
          epoch: reply.epoch,
          resumed: String(reply.resumed ?? ''),
          workers: Array.isArray(reply.workers) ? reply.workers : [],
          models: stringList(reply.models),
          fleet: isObj(reply.fleet) ? reply.fleet : undefined,
        });
        const held = early;
        early = [];
        for (const [name, event] of held) intake(name, event);
        for (const wake of [...readyWaiters]) wake();
      });
  }

  /**
   * Resolves true once connected and greeted, or false after `budgetMs`.
   * @param {number} budgetMs @returns {Promise<boolean>}
   */
  function whenReady(budgetMs) {
    if (greeted && socket.connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (/** @type {boolean} */ ok) => {
        window.clearTimeout(timer);
        readyWaiters.delete(wake);
        resolve(ok);
      };
      const wake = () => done(true);
      const timer = window.setTimeout(() => done(false), budgetMs);
      readyWaiters.add(wake);
    });
  }

  /**
   * Emits with an ack; `{ lost: true }` when no answer comes in time or the
   * connection drops first.
   * @param {string} event @param {unknown} payload @param {number} timeoutMs
   * @returns {Promise<{ lost: true } | { lost: false, reply: any }>}
   */
  function request(event, payload, timeoutMs) {
    return new Promise((resolve) => {
      const lose = () => {
        inflight.delete(lose);
        resolve({ lost: true });
      };
      inflight.add(lose);
      socket
        .timeout(timeoutMs)
        .emit(event, payload, (/** @type {unknown} */ err, /** @type {any} */ reply) => {
          if (!inflight.delete(lose)) return;
          resolve(err ? { lost: true } : { lost: false, reply });
        });
    });
  }

  /**
   * Sends a submission once the link is greeted. `lost` says the outcome is
   * unknown (no ack in time, or the connection dropped): the same payload may
   * be sent again, the master keeps it idempotent per client id.
   * @param {Record<string, unknown>} payload @param {number} [budgetMs]
   * @returns {Promise<{ ok: true, taskId: string } | { ok: false, lost: boolean, error: string }>}
   */
  async function submit(payload, budgetMs = ACK_TIMEOUT_MS) {
    const start = performance.now();
    if (!(await whenReady(budgetMs))) return { ok: false, lost: true, error: NOT_CONFIRMED_ERROR };
    const left = Math.max(1, budgetMs - (performance.now() - start));
    const answer = await request('task:submit', payload, Math.min(ACK_TIMEOUT_MS, left));
    if (answer.lost) return { ok: false, lost: true, error: NOT_CONFIRMED_ERROR };
    const { reply } = answer;
    if (reply?.ok && typeof reply.taskId === 'string') return { ok: true, taskId: reply.taskId };
    return {
      ok: false,
      lost: false,
      error: String(reply?.error ?? 'The master rejected the task.'),
    };
  }

  /**
   * A request about one task, answered `{ ok: true, ... }` or `{ ok: false, error }`.
   * @param {string} event @param {Record<string, unknown>} payload @param {string} what e.g. "cancel"
   * @returns {Promise<{ ok: true, reply: Record<string, any> } | { ok: false, error: string }>}
   */
  async function ask(event, payload, what) {
    if (!greeted || !socket.connected) return { ok: false, error: NOT_CONNECTED_ERROR };
    const answer = await request(event, payload, ACK_TIMEOUT_MS);
    if (answer.lost) return { ok: false, error: `The master did not confirm the ${what}.` };
    if (answer.reply?.ok) return { ok: true, reply: answer.reply };
    return { ok: false, error: String(answer.reply?.error ?? `The master refused the ${what}.`) };
  }

  /**
   * Asks the master to cancel a task; the outcome itself arrives as a task event.
   * @param {string} taskId
   * @returns {Promise<{ ok: true, state: string } | { ok: false, error: string }>}
   */
  async function cancel(taskId) {
    const answer = await ask('task:cancel', { taskId }, 'cancel');
    return answer.ok ? { ok: true, state: String(answer.reply.state ?? '') } : answer;
  }

  /**
   * Moves a queued task to another priority; refused once it runs or has finished.
   * @param {string} taskId @param {number} priority
   * @returns {Promise<{ ok: true, priority: number } | { ok: false, error: string }>}
   */
  async function reprioritize(taskId, priority) {
    const answer = await ask('task:reprioritize', { taskId, priority }, 'new priority');
    if (!answer.ok) return answer;
    const confirmed = answer.reply.priority;
    return { ok: true, priority: Number.isInteger(confirmed) ? confirmed : priority };
  }

  /**
   * Connects again with another access token ('' for none): a new handshake,
   * so the master checks it. Also the way out of a refusal.
   * @param {string} token
   */
  function setToken(token) {
    socket.auth = authOf(token);
    socket.disconnect().connect();
    linkState.restart();
  }

  /**
   * Tells the master every outbox event up to `seq` is processed (and saved).
   * @param {number} seq
   */
  function ack(seq) {
    if (!greeted || !socket.connected || seq <= ackedSeq) return;
    ackedSeq = seq;
    socket.emit('session:ack', { seq });
  }

  return { submit, cancel, reprioritize, ack, setToken, isConnected: () => socket.connected };
}

/** The handshake's `auth`: the token when there is one. @param {string} token */
function authOf(token) {
  return token ? { token } : {};
}

/** @param {unknown} v @returns {string[]} */
function stringList(v) {
  return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
}
