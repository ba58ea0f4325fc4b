/**
 * The line under a finished answer: who ran it (or that the result cache
 * answered it), how long it queued, ran and took in all, its time to first
 * token and tokens per second, the model, the priority and, after a lost
 * attempt, which attempt answered.
 */
import { h } from './dom.js';
import { formatClock, formatMs, totalMs } from './format.js';
import { isPriority, priorityTitle } from './priority.js';

/** @param {HTMLElement} meta @param {Record<string, any>} m */
export function fillMeta(meta, m) {
  const done = m.state === 'completed' || m.state === 'failed' || m.state === 'cancelled';
  meta.hidden = !done;
  if (!done) return meta.replaceChildren();
  const t = m.timings ?? {};
  const cached = m.cache?.hit === true;
  const items = [];
  if (cached) items.push(cachedBadge(m.cache.cachedAt));
  if (m.workerId)
    items.push(h('span', { class: 'meta-worker', testid: 'meta-worker-id', text: m.workerId }));
  if (m.workerKind) {
    items.push(
      h('span', {
        class: `badge badge-${m.workerKind}`,
        testid: 'meta-worker-kind',
        text: m.workerKind.toUpperCase(),
      }),
    );
  }
  /** @param {string} label @param {unknown} value @param {string} id @param {string} [title] */
  const stat = (label, value, id, title = label) =>
    h('span', { class: 'meta-stat', testid: id, title }, [
      h('span', { class: 'meta-label', text: label }),
      ` ${value}`,
    ]);
  if (t.queueMs !== undefined) items.push(stat('queue', formatMs(t.queueMs), 'meta-queue'));
  // No worker ran a cached answer: its processing time says nothing.
  if (t.processingMs !== undefined && !cached)
    items.push(stat('processing', formatMs(t.processingMs), 'meta-processing'));
  const total = totalMs(t);
  if (total !== undefined) items.push(stat('total', formatMs(total), 'meta-total'));
  if (typeof t.ttftMs === 'number' && !cached) {
    const title = 'Time to first token: from sending to the first piece of the answer';
    items.push(stat('first token', formatMs(t.ttftMs), 'meta-ttft', title));
  }
  const rate = cached ? undefined : tokensPerSecond(m.usage, t);
  if (rate !== undefined) {
    const counted = m.usage.estimated
      ? ' (counted by the worker: the provider gave no counts)'
      : '';
    const title = `${m.usage.outputTokens} tokens${counted}, from the first to the last piece of the answer`;
    items.push(stat('tokens/s', rate, 'meta-rate', title));
  }
  if (m.model) items.push(h('span', { class: 'meta-model', testid: 'meta-model', text: m.model }));
  if (isPriority(m.priority)) {
    items.push(stat('priority', m.priority, 'meta-priority', priorityTitle(m.priority)));
  }
  if (m.attempt > 1) items.push(h('span', { class: 'meta-stat', text: `attempt ${m.attempt}` }));
  meta.replaceChildren(...items);
}

/**
 * Output tokens per second from the first piece of the answer to the last
 * (both on the master's clock), or undefined when that cannot be told.
 * @param {Record<string, any> | undefined} usage @param {Record<string, any>} t
 */
function tokensPerSecond(usage, t) {
  if (!usage || typeof t.firstChunkAt !== 'number' || typeof t.totalMs !== 'number') return;
  const lastAt = t.submittedAt + t.totalMs;
  const seconds = (lastAt - t.firstChunkAt) / 1000;
  if (!(seconds > 0.05) || !(usage.outputTokens > 1)) return;
  const rate = usage.outputTokens / seconds;
  return rate >= 100 ? String(Math.round(rate)) : rate.toFixed(1);
}

/** @param {unknown} cachedAt when the answer was stored */
function cachedBadge(cachedAt) {
  const when = typeof cachedAt === 'number' ? ` at ${formatClock(cachedAt)}` : '';
  return h('span', {
    class: 'badge badge-cached',
    testid: 'meta-cached',
    text: 'Cached',
    title: `Answered from the result cache (stored${when}); no worker ran it.`,
  });
}
