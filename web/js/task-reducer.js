/**
 * How one task event changes one assistant message. Events reach here in
 * outbox order with duplicates already removed (see outbox.js), so a chunk is
 * applied only when it is the next one of the current attempt; the final
 * text of `task:completed` is authoritative and replaces whatever streamed.
 */

/** @param {unknown} v @returns {v is Record<string, any>} */
export const isObj = (v) => typeof v === 'object' && v !== null;
/** @param {unknown} v @returns {v is number} */
export const isInt = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
/** @param {unknown} v @returns {string | undefined} */
const text = (v) => (typeof v === 'string' && v ? v.slice(0, 2_000) : undefined);

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * Brings a message restored from storage up to date with the current fields.
 * @param {Record<string, any>} m
 */
export function normalize(m) {
  if (!isInt(m.attempt)) m.attempt = 0;
  if (!isInt(m.begun)) m.begun = m.attempt;
  if (!isInt(m.next)) m.next = isObj(m.chunks) ? contiguousCount(m.chunks) : 0;
  delete m.chunks;
  // A cancel or a new priority in flight when the page went away: it may be asked again.
  m.cancelling = undefined;
  m.reprioritizing = undefined;
}

/** Chunks 0, 1, 2, ... an earlier version kept by index. @param {Record<string, unknown>} chunks */
function contiguousCount(chunks) {
  let n = 0;
  while (Object.hasOwn(chunks, String(n))) n++;
  return n;
}

/**
 * Applies one event to one assistant message; returns whether it changed.
 * @param {Record<string, any>} m @param {string} name @param {Record<string, any>} p
 */
export function reduce(m, name, p) {
  switch (name) {
    case 'task:queued':
      m.state = 'queued';
      m.waitingFor = text(p.waitingFor);
      return true;
    case 'task:assigned':
      return onAssigned(m, p);
    case 'task:chunk':
      return onChunk(m, p);
    case 'task:retrying':
      return onRetrying(m, p);
    case 'task:completed':
      Object.assign(m, finished(m, p));
      m.begun = m.attempt;
      m.state = 'completed';
      m.text = typeof p.result === 'string' ? p.result : m.text;
      m.error = undefined;
      return true;
    case 'task:failed': {
      Object.assign(m, finished(m, p));
      const cancelled = p.state === 'cancelled';
      m.state = cancelled ? 'cancelled' : 'failed';
      m.error = text(p.error) ?? (cancelled ? undefined : 'The task failed.');
      return true;
    }
    default:
      return false;
  }
}

/**
 * An attempt starts on a worker. A new attempt after a lost one carries on
 * from the text it continues (`continuesFrom`), or starts the answer over
 * when its worker cannot continue one (the bubble says so). A repeated
 * assignment of the same attempt (a master restart) changes no text.
 * @param {Record<string, any>} m @param {Record<string, any>} p
 */
function onAssigned(m, p) {
  if (!isInt(p.attempt) || p.attempt < m.attempt) return false;
  if (p.attempt > (isInt(m.begun) ? m.begun : 0)) {
    const continued = typeof p.continuesFrom === 'string' ? p.continuesFrom : undefined;
    m.restarted = continued === undefined && p.attempt > 1 && m.text ? true : undefined;
    m.continued = continued !== undefined ? true : undefined;
    restart(m, p.attempt);
    m.text = continued ?? '';
    m.begun = p.attempt;
  }
  m.state = 'running';
  m.waitingFor = undefined;
  m.retrying = undefined;
  if (typeof p.workerId === 'string') m.workerId = p.workerId;
  if (p.workerKind === 'cpu' || p.workerKind === 'gpu') m.workerKind = p.workerKind;
  return true;
}

/** @param {Record<string, any>} m @param {Record<string, any>} p */
function onChunk(m, p) {
  if (!isInt(p.attempt) || !isInt(p.seq) || typeof p.text !== 'string') return false;
  if (p.attempt < m.attempt) return false;
  if (p.attempt > m.attempt) {
    // Its assignment was missed: the final text will be whole.
    restart(m, p.attempt);
    m.begun = p.attempt;
  }
  // Only the next chunk: an earlier one is a repeat, a later one leaves a gap
  // that the final text fills.
  if (p.seq !== m.next) return false;
  m.text += p.text;
  m.next += 1;
  m.state = 'running';
  m.waitingFor = undefined;
  m.retrying = undefined;
  return true;
}

/**
 * Attempt `p.attempt` was lost (its worker died, say) and the task waits for
 * another worker: what it streamed stays until the next attempt's assignment
 * says whether it continues it or starts over.
 * @param {Record<string, any>} m @param {Record<string, any>} p
 */
function onRetrying(m, p) {
  if (!isInt(p.attempt) || p.attempt < m.attempt) return false;
  const kept = m.text;
  restart(m, p.attempt + 1);
  m.text = kept;
  m.state = 'queued';
  m.waitingFor = undefined;
  m.retrying = true;
  m.retryReason = text(p.reason) ?? 'the attempt was lost';
  return true;
}

/** @param {Record<string, any>} m @param {number} attempt */
function restart(m, attempt) {
  m.attempt = attempt;
  m.next = 0;
  m.text = '';
}

/** @param {Record<string, any>} m @param {Record<string, any>} task a TaskView */
function finished(m, task) {
  const kind = task.workerKind === 'cpu' || task.workerKind === 'gpu' ? task.workerKind : null;
  const cache = cacheHit(task.cache);
  return {
    waitingFor: undefined,
    retrying: undefined,
    cancelling: undefined,
    cancelError: undefined,
    reprioritizing: undefined,
    priorityError: undefined,
    // An answer from the result cache: no worker ran it.
    workerId: cache ? undefined : typeof task.workerId === 'string' ? task.workerId : m.workerId,
    workerKind: cache ? undefined : (kind ?? m.workerKind),
    model: typeof task.model === 'string' ? task.model : m.model,
    priority: isInt(task.priority) ? task.priority : m.priority,
    cache,
    timings: isObj(task.timings) ? task.timings : {},
    usage: usageOf(task.usage),
    attempt: isInt(task.attempt) ? task.attempt : m.attempt,
  };
}

/** A TaskView's token counts, when it has them. @param {unknown} u */
function usageOf(u) {
  if (!isObj(u) || !isInt(u.inputTokens) || !isInt(u.outputTokens)) return undefined;
  const estimated = u.estimated === true ? true : undefined;
  return { inputTokens: u.inputTokens, outputTokens: u.outputTokens, estimated };
}

/** A TaskView's `cache` when it says the answer came from the result cache. @param {unknown} c */
function cacheHit(c) {
  if (!isObj(c) || c.hit !== true) return undefined;
  return { hit: true, cachedAt: typeof c.cachedAt === 'number' ? c.cachedAt : undefined };
}
