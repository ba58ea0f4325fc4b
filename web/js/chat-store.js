/**
 * Chat state, free of DOM. Every task event goes through apply() (after the
 * connection has dropped replays and duplicates by their outbox number); the
 * view is told which message changed. Events may arrive before the submit ack
 * binds a task id to its bubble, so those are held and replayed. A terminal
 * message never changes again, so a late event is harmless.
 */
import { isObj, normalize, reduce, TERMINAL } from './task-reducer.js';

/** Unknown task ids held at most; older ones are dropped (e.g. tasks of another tab). */
const MAX_PENDING = 100;
/** Shown on a restored bubble whose submit was never acknowledged: its task id is unknown. */
export const UNCONFIRMED_ERROR = 'The page was closed before the master confirmed this task.';

/**
 * @param {{
 *   messages: Array<Record<string, any>>,
 *   onChange: (m: Record<string, any>) => void,
 *   newId: () => string,
 *   now: () => number,
 *   sending?: (clientId: string) => boolean,
 * }} deps `sending` says whether a restored bubble's submission is still being sent
 */
export function createChatStore({ messages, onChange, newId, now, sending = () => false }) {
  /** @type {Map<string, Record<string, any>>} */
  const byTask = new Map();
  /** @type {Map<string, Record<string, any>>} */
  const byClient = new Map();
  /** @type {Map<string, Array<[string, any]>>} */
  const pending = new Map();

  for (const m of messages) {
    if (m.kind !== 'assistant') continue;
    normalize(m);
    if (typeof m.id === 'string') byClient.set(m.id, m);
    if (typeof m.taskId === 'string') byTask.set(m.taskId, m);
    else if (!TERMINAL.has(m.state) && !sending(m.id)) {
      // Later events name only the task id, so nothing could ever finish this bubble.
      m.state = 'failed';
      m.error = UNCONFIRMED_ERROR;
    }
  }

  /** @param {string} prompt @param {{ model?: string, gpu: boolean, priority: number }} options */
  function addExchange(prompt, options) {
    const user = { kind: 'user', id: newId(), text: prompt, ts: now() };
    const assistant = {
      kind: 'assistant',
      id: newId(),
      state: 'queued',
      text: '',
      attempt: 0,
      next: 0,
      model: options.model,
      gpu: options.gpu,
      priority: options.priority,
      ts: now(),
    };
    messages.push(user, assistant);
    byClient.set(assistant.id, assistant);
    onChange(user);
    onChange(assistant);
    return { user, assistant };
  }

  /** @param {string} clientId @param {string} taskId */
  function bindTask(clientId, taskId) {
    const m = byClient.get(clientId);
    if (!m || typeof taskId !== 'string') return;
    if (m.taskId === taskId) return;
    m.taskId = taskId;
    byTask.set(taskId, m);
    onChange(m);
    const held = pending.get(taskId);
    pending.delete(taskId);
    for (const [name, payload] of held ?? []) apply(name, payload);
  }

  /** A submit that never reached the queue (rejected or not acknowledged). @param {string} clientId @param {string} error */
  function failLocal(clientId, error) {
    const m = byClient.get(clientId);
    if (!m || TERMINAL.has(m.state) || m.taskId) return;
    m.state = 'failed';
    m.error = error;
    onChange(m);
  }

  /** The master does not know the task (any more): nothing will ever finish it. @param {string} taskId @param {string} error */
  function failUnknown(taskId, error) {
    const m = byTask.get(taskId);
    if (!m || TERMINAL.has(m.state)) return;
    m.state = 'failed';
    m.error = error;
    onChange(m);
  }

  /** @param {string} taskId @param {string} name @param {unknown} payload */
  function hold(taskId, name, payload) {
    const list = pending.get(taskId) ?? [];
    list.push([name, payload]);
    pending.set(taskId, list);
    if (pending.size > MAX_PENDING) {
      const oldest = pending.keys().next().value;
      if (oldest !== undefined) pending.delete(oldest);
    }
  }

  /** @param {string} name @param {unknown} payload */
  function apply(name, payload) {
    if (!isObj(payload)) return;
    const taskId =
      name === 'task:completed' || name === 'task:failed' ? payload.id : payload.taskId;
    if (typeof taskId !== 'string') return;
    if (name === 'task:queued' && typeof payload.clientId === 'string' && !byTask.has(taskId)) {
      bindTask(payload.clientId, taskId);
    }
    const m = byTask.get(taskId);
    if (!m) return hold(taskId, name, payload);
    if (TERMINAL.has(m.state)) return;
    const changed = reduce(m, name, payload);
    if (changed) onChange(m);
  }

  /** Task ids whose bubbles still wait for an outcome, oldest first. */
  function openTaskIds() {
    return [...byTask].filter(([, m]) => !TERMINAL.has(m.state)).map(([id]) => id);
  }

  /**
   * Marks a bubble's cancel as asked for; returns its task id, or null when
   * there is nothing to cancel (no task yet, already finished or asked).
   * @param {string} clientId
   */
  function requestCancel(clientId) {
    const m = byClient.get(clientId);
    if (!m?.taskId || TERMINAL.has(m.state) || m.cancelling) return null;
    m.cancelling = true;
    m.cancelError = undefined;
    onChange(m);
    return /** @type {string} */ (m.taskId);
  }

  /** The master did not take the cancel: the button works again. @param {string} clientId @param {string} error */
  function cancelRefused(clientId, error) {
    const m = byClient.get(clientId);
    if (!m || TERMINAL.has(m.state)) return;
    m.cancelling = undefined;
    m.cancelError = error;
    onChange(m);
  }

  /**
   * Marks a queued bubble's move to `priority` as asked for; returns its task
   * id, or null when there is nothing to move (not queued, no task id yet,
   * a move already asked, or the priority is the same).
   * @param {string} clientId @param {number} priority
   */
  function requestReprioritize(clientId, priority) {
    const m = byClient.get(clientId);
    if (!m?.taskId || m.state !== 'queued' || m.reprioritizing !== undefined) return null;
    if (m.priority === priority) return null;
    m.reprioritizing = priority;
    m.priorityError = undefined;
    onChange(m);
    return /** @type {string} */ (m.taskId);
  }

  /**
   * The master's answer to a move: the priority it now has, or why it refused
   * (the task already runs, say), which the bubble shows.
   * @param {string} clientId @param {{ ok: true, priority: number } | { ok: false, error: string }} reply
   */
  function reprioritized(clientId, reply) {
    const m = byClient.get(clientId);
    if (!m || TERMINAL.has(m.state)) return;
    m.reprioritizing = undefined;
    if (reply.ok) m.priority = reply.priority;
    else m.priorityError = reply.error;
    onChange(m);
  }

  /** Whether a bubble still waits for its submit ack (no task id, no outcome). @param {string} clientId */
  const awaitsAck = (clientId) => {
    const m = byClient.get(clientId);
    return Boolean(m && !m.taskId && !TERMINAL.has(m.state));
  };

  /** Forgets the conversation, so late events or answers cannot bring a bubble back. */
  function clear() {
    messages.length = 0;
    byTask.clear();
    byClient.clear();
    pending.clear();
  }

  return {
    messages,
    addExchange,
    bindTask,
    failLocal,
    failUnknown,
    apply,
    openTaskIds,
    requestCancel,
    cancelRefused,
    requestReprioritize,
    reprioritized,
    awaitsAck,
    clear,
  };
}
