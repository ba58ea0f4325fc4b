/**
 * Chat state, free of DOM. Every Socket.IO task event goes through apply();
 * the view is told which message changed. Events may arrive before the
 * submit ack binds a task id to its bubble, so those are held and replayed.
 * A terminal message never changes again, so a duplicate or late event (or a
 * REST answer racing an event) is harmless.
 */

const TERMINAL = new Set(['completed', 'failed']);
/** Unknown task ids held at most; older ones are dropped (e.g. tasks of another tab). */
const MAX_PENDING = 100;
/** Shown on a restored bubble whose submit was never acknowledged: its task id is unknown. */
export const UNCONFIRMED_ERROR = 'The page was closed before the master confirmed this task.';

/** @param {unknown} v @returns {v is Record<string, any>} */
const isObj = (v) => typeof v === 'object' && v !== null;
/** @param {unknown} v */
const isInt = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * @param {{ messages: Array<Record<string, any>>, onChange: (m: Record<string, any>) => void, newId: () => string, now: () => number }} deps
 */
export function createChatStore({ messages, onChange, newId, now }) {
  /** @type {Map<string, Record<string, any>>} */
  const byTask = new Map();
  /** @type {Map<string, Record<string, any>>} */
  const byClient = new Map();
  /** @type {Map<string, Array<[string, any]>>} */
  const pending = new Map();

  for (const m of messages) {
    if (m.kind !== 'assistant') continue;
    if (typeof m.id === 'string') byClient.set(m.id, m);
    if (typeof m.taskId === 'string') byTask.set(m.taskId, m);
    else if (!TERMINAL.has(m.state)) {
      // Later events name only the task id, so nothing could ever finish this bubble.
      m.state = 'failed';
      m.error = UNCONFIRMED_ERROR;
    }
  }

  /** @param {string} prompt @param {{ model?: string, gpu: boolean }} options */
  function addExchange(prompt, options) {
    const user = { kind: 'user', id: newId(), text: prompt, ts: now() };
    const assistant = {
      kind: 'assistant',
      id: newId(),
      state: 'queued',
      text: '',
      attempt: 0,
      chunks: {},
      model: options.model,
      gpu: options.gpu,
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

  /** Task ids whose bubbles still wait for an outcome. */
  function openTaskIds() {
    return [...byTask].filter(([, m]) => !TERMINAL.has(m.state)).map(([id]) => id);
  }

  /**
   * Applies the master's current view of a task (`GET /api/tasks/:id`), as
   * the matching event would. A snapshot older than the events already seen
   * (a lower attempt) leaves the bubble alone.
   * @param {string} taskId @param {unknown} view
   */
  function reconcile(taskId, view) {
    if (!isObj(view) || view.id !== taskId) return;
    const m = byTask.get(taskId);
    if (!m || TERMINAL.has(m.state)) return;
    switch (view.state) {
      case 'completed':
        return apply('task:completed', view);
      case 'failed':
        return apply('task:failed', view);
      case 'cancelled':
        return apply('task:failed', { ...view, error: view.error || 'The task was cancelled.' });
      case 'running':
        return apply('task:assigned', { ...view, taskId });
      case 'queued':
        // The running attempt was lost and the task waits for another worker.
        if (m.state === 'running' && isInt(view.attempt) && view.attempt >= m.attempt) {
          m.state = 'queued';
          onChange(m);
        }
        return;
    }
  }

  /** Forgets the conversation, so late events or answers cannot bring a bubble back. */
  function clear() {
    messages.length = 0;
    byTask.clear();
    byClient.clear();
    pending.clear();
  }

  return { messages, addExchange, bindTask, failLocal, apply, openTaskIds, reconcile, clear };
}

/**
 * Applies one event to one assistant message; returns whether it changed.
 * @param {Record<string, any>} m @param {string} name @param {Record<string, any>} p
 */
export function reduce(m, name, p) {
  switch (name) {
    case 'task:queued':
      m.state = 'queued';
      m.waitingFor = typeof p.waitingFor === 'string' ? p.waitingFor : undefined;
      return true;
    case 'task:assigned':
      return onAssigned(m, p);
    case 'task:chunk':
      return onChunk(m, p);
    case 'task:completed':
      Object.assign(m, finished(m, p));
      m.state = 'completed';
      m.text = typeof p.result === 'string' ? p.result : m.text;
      m.error = undefined;
      return true;
    case 'task:failed':
      Object.assign(m, finished(m, p));
      m.state = 'failed';
      m.error = typeof p.error === 'string' && p.error ? p.error : 'The task failed.';
      return true;
    default:
      return false;
  }
}

/** @param {Record<string, any>} m @param {Record<string, any>} p */
function onAssigned(m, p) {
  if (!isInt(p.attempt) || p.attempt < m.attempt) return false;
  if (p.attempt > m.attempt) {
    m.retried = m.attempt > 0;
    restart(m, p.attempt);
  }
  m.state = 'running';
  m.waitingFor = undefined;
  if (typeof p.workerId === 'string') m.workerId = p.workerId;
  if (p.workerKind === 'cpu' || p.workerKind === 'gpu') m.workerKind = p.workerKind;
  return true;
}

/** @param {Record<string, any>} m @param {Record<string, any>} p */
function onChunk(m, p) {
  if (!isInt(p.attempt) || !isInt(p.seq) || typeof p.text !== 'string') return false;
  if (p.attempt < m.attempt) return false;
  if (p.attempt > m.attempt) {
    m.retried = m.attempt > 0;
    restart(m, p.attempt);
  }
  if (Object.hasOwn(m.chunks, String(p.seq))) return false;
  m.chunks[String(p.seq)] = p.text;
  m.state = 'running';
  m.waitingFor = undefined;
  m.text = contiguousText(m.chunks);
  return true;
}

/** @param {Record<string, any>} m @param {number} attempt */
function restart(m, attempt) {
  m.attempt = attempt;
  m.chunks = {};
  m.text = '';
}

/** Text of seq 0, 1, 2, ... up to the first gap; a late chunk fills its gap. @param {Record<string, string>} chunks */
export function contiguousText(chunks) {
  let text = '';
  for (let seq = 0; Object.hasOwn(chunks, String(seq)); seq++) text += chunks[String(seq)];
  return text;
}

/** @param {Record<string, any>} m @param {Record<string, any>} task */
function finished(m, task) {
  const kind = task.workerKind === 'cpu' || task.workerKind === 'gpu' ? task.workerKind : null;
  return {
    chunks: {},
    waitingFor: undefined,
    workerId: typeof task.workerId === 'string' ? task.workerId : m.workerId,
    workerKind: kind ?? m.workerKind,
    model: typeof task.model === 'string' ? task.model : m.model,
    timings: isObj(task.timings) ? task.timings : {},
    attempt: isInt(task.attempt) ? task.attempt : m.attempt,
  };
}
