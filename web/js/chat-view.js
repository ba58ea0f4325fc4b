/**
 * Renders chat messages. One DOM node per message, created once and updated
 * in place, so streaming a chunk touches only its own bubble.
 */
import { h } from './dom.js';
import { formatClock, formatMs, renderMarkdown, totalMs } from './format.js';

/**
 * @param {{
 *   list: HTMLElement, scroller: HTMLElement, empty: HTMLElement,
 *   onCancel: (messageId: string) => void,
 * }} els
 */
export function createChatView({ list, scroller, empty, onCancel }) {
  /** @type {Map<string, HTMLElement>} */
  const nodes = new Map();

  /** @param {Record<string, any>} m */
  function render(m) {
    const stick = nearBottom(scroller);
    let node = nodes.get(m.id);
    if (!node) {
      node = m.kind === 'user' ? userNode(m) : assistantNode(m.id, onCancel);
      nodes.set(m.id, node);
      list.appendChild(node);
    }
    if (m.kind === 'assistant') updateAssistant(node, m);
    empty.hidden = nodes.size > 0;
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  function reset() {
    nodes.clear();
    list.replaceChildren();
    empty.hidden = false;
  }

  return { render, reset };
}

/** @param {HTMLElement} el */
function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 120;
}

/** @param {Record<string, any>} m */
function userNode(m) {
  const bubble = h('div', { class: 'bubble bubble-user' });
  bubble.textContent = m.text;
  return h('article', { class: 'msg msg-user', testid: 'message-user', 'aria-label': 'You' }, [
    h('div', { class: 'msg-body' }, [
      bubble,
      h('time', { class: 'msg-time', text: formatClock(m.ts) }),
    ]),
  ]);
}

/** @param {string} id @param {(messageId: string) => void} onCancel */
function assistantNode(id, onCancel) {
  const status = h('div', { class: 'answer-status', testid: 'answer-status', role: 'status' }, [
    h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('i'), h('i'), h('i')]),
    h('span', { class: 'answer-status-text' }),
  ]);
  const text = h('div', {
    class: 'answer-text',
    testid: 'answer-text',
    'aria-live': 'polite',
    'aria-atomic': 'false',
  });
  const error = h('div', { class: 'answer-error', testid: 'answer-error', role: 'alert' });
  const meta = h('div', { class: 'answer-meta', testid: 'answer-meta' });
  const copy = h('button', {
    type: 'button',
    class: 'icon-button copy-button',
    'aria-label': 'Copy answer',
    title: 'Copy answer',
    text: 'Copy',
  });
  const cancel = h('button', {
    type: 'button',
    class: 'icon-button cancel-button',
    testid: 'cancel-task',
    text: 'Cancel',
  });
  const node = h('article', { class: 'msg msg-assistant', testid: 'message-assistant' }, [
    h('img', { class: 'avatar', src: 'favicon.svg', alt: '', width: '32', height: '32' }),
    h('div', { class: 'msg-body' }, [
      h('div', { class: 'bubble bubble-assistant' }, [status, text, error]),
      h('div', { class: 'msg-footer' }, [meta, cancel, copy]),
    ]),
  ]);
  cancel.addEventListener('click', () => onCancel(id));
  copy.addEventListener('click', () => {
    navigator.clipboard?.writeText(text.textContent ?? '').then(
      () => flash(copy, 'Copied'),
      () => flash(copy, 'Copy failed'),
    );
  });
  return node;
}

/** @param {HTMLElement} button @param {string} label */
function flash(button, label) {
  button.textContent = label;
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 1500);
}

/** @param {HTMLElement} node @param {Record<string, any>} m */
function updateAssistant(node, m) {
  node.dataset.state = m.state;
  if (m.taskId) node.dataset.taskId = m.taskId;
  else delete node.dataset.taskId;
  const q = (/** @type {string} */ id) => /** @type {HTMLElement} */ (node.querySelector(id));
  const status = q('[data-testid="answer-status"]');
  const text = q('[data-testid="answer-text"]');
  const error = q('[data-testid="answer-error"]');
  const busy = m.state === 'queued' || m.state === 'running';

  status.hidden = !busy;
  /** @type {HTMLElement} */ (status.querySelector('.answer-status-text')).textContent =
    statusText(m);
  status.title = busy ? statusTitle(m) : '';
  if (m.retrying) node.dataset.retrying = 'true';
  else delete node.dataset.retrying;
  text.setAttribute('aria-busy', String(busy));
  text.classList.toggle('streaming', m.state === 'running' && Boolean(m.text));
  text.hidden = !m.text;
  if (text.dataset.rendered !== m.text) {
    renderMarkdown(text, m.text ?? '');
    text.dataset.rendered = m.text ?? '';
  }
  error.hidden = m.state !== 'failed' && m.state !== 'cancelled';
  error.textContent = endText(m);
  // A cancel is what someone asked for: announced politely, not as an alert.
  error.setAttribute('role', m.state === 'cancelled' ? 'status' : 'alert');

  const copy = /** @type {HTMLElement} */ (node.querySelector('.copy-button'));
  copy.hidden = m.state !== 'completed' || !m.text;
  const cancel = /** @type {HTMLButtonElement} */ (q('[data-testid="cancel-task"]'));
  cancel.hidden = !busy || !m.taskId;
  cancel.disabled = Boolean(m.cancelling);
  cancel.textContent = m.cancelling ? 'Cancelling…' : 'Cancel';
  cancel.title = m.cancelError ? `Could not cancel: ${m.cancelError}` : 'Stop this task';
  fillMeta(q('[data-testid="answer-meta"]'), m);
}

/** What a failed or cancelled bubble says; empty otherwise. @param {Record<string, any>} m */
function endText(m) {
  if (m.state === 'failed') return m.error ?? 'The task failed.';
  // The master's reason when it gave one (e.g. "timed out after 30 s").
  if (m.state === 'cancelled') return m.error ?? 'Cancelled';
  return '';
}

/** @param {Record<string, any>} m */
function statusText(m) {
  if (m.state === 'running') {
    const where = m.workerId ? `Running on ${m.workerId}` : 'Running';
    return m.attempt > 1 ? `${where} · attempt ${m.attempt}` : where;
  }
  if (!m.taskId) return 'Sending…';
  const queued = m.retrying ? 'Retrying on another worker' : 'Queued';
  return m.waitingFor ? `${queued} · ${m.waitingFor}` : queued;
}

/** The tooltip of the status line: why the task is on its second (or later) attempt. @param {Record<string, any>} m */
function statusTitle(m) {
  if (!m.retryReason || m.attempt < 2) return '';
  const lost = `Attempt ${m.attempt - 1} was lost: ${m.retryReason}`;
  return m.retrying ? `${lost}. Another worker will run it.` : lost;
}

/** @param {HTMLElement} meta @param {Record<string, any>} m */
function fillMeta(meta, m) {
  const done = m.state === 'completed' || m.state === 'failed' || m.state === 'cancelled';
  meta.hidden = !done;
  if (!done) return meta.replaceChildren();
  const t = m.timings ?? {};
  const items = [];
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
  const stat = (/** @type {string} */ label, /** @type {unknown} */ ms, /** @type {string} */ id) =>
    h('span', { class: 'meta-stat', testid: id, title: label }, [
      h('span', { class: 'meta-label', text: label }),
      ` ${formatMs(ms)}`,
    ]);
  if (t.queueMs !== undefined) items.push(stat('queue', t.queueMs, 'meta-queue'));
  if (t.processingMs !== undefined)
    items.push(stat('processing', t.processingMs, 'meta-processing'));
  const total = totalMs(t);
  if (total !== undefined) items.push(stat('total', total, 'meta-total'));
  if (m.model) items.push(h('span', { class: 'meta-model', testid: 'meta-model', text: m.model }));
  if (m.attempt > 1) items.push(h('span', { class: 'meta-stat', text: `attempt ${m.attempt}` }));
  meta.replaceChildren(...items);
}
