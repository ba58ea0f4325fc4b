/**
 * Renders chat messages. One DOM node per message, created once and updated
 * in place, so streaming a chunk touches only its own bubble.
 */
import { fillMeta } from './answer-meta.js';
import { h } from './dom.js';
import { formatClock } from './format.js';
import { renderMarkdown } from './markdown.js';
import { chosenPriority, DEFAULT_PRIORITY, showPriority } from './priority.js';

/**
 * @typedef {{
 *   onCancel: (messageId: string) => void,
 *   onReprioritize: (messageId: string, priority: number) => void,
 * }} Actions
 * @param {{ list: HTMLElement, scroller: HTMLElement, empty: HTMLElement } & Actions} els
 */
export function createChatView({ list, scroller, empty, ...actions }) {
  /** @type {Map<string, HTMLElement>} */
  const nodes = new Map();

  /** @param {Record<string, any>} m */
  function render(m) {
    const stick = nearBottom(scroller);
    let node = nodes.get(m.id);
    if (!node) {
      node = m.kind === 'user' ? userNode(m) : assistantNode(m.id, actions);
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

/** @param {string} id @param {Actions} actions */
function assistantNode(id, actions) {
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
  const note = h('div', { class: 'answer-note', testid: 'priority-error', role: 'status' });
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
  // While queued: another priority can still move the task ahead (or back).
  const priority = /** @type {HTMLSelectElement} */ (
    h('select', { class: 'priority-select', testid: 'priority-change' })
  );
  const priorityEdit = h('label', { class: 'priority-edit', testid: 'priority-editor' }, [
    h('span', { class: 'meta-label', text: 'Priority' }),
    priority,
  ]);
  const node = h('article', { class: 'msg msg-assistant', testid: 'message-assistant' }, [
    h('img', { class: 'avatar', src: 'favicon.svg', alt: '', width: '32', height: '32' }),
    h('div', { class: 'msg-body' }, [
      h('div', { class: 'bubble bubble-assistant' }, [status, text, error, note]),
      h('div', { class: 'msg-footer' }, [meta, priorityEdit, cancel, copy]),
    ]),
  ]);
  cancel.addEventListener('click', () => actions.onCancel(id));
  priority.addEventListener('change', () => actions.onReprioritize(id, chosenPriority(priority)));
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
  updatePriority(node, m);
  fillMeta(q('[data-testid="answer-meta"]'), m);
}

/** The queued bubble's priority control and a refused move's reason. @param {HTMLElement} node @param {Record<string, any>} m */
function updatePriority(node, m) {
  const edit = /** @type {HTMLElement} */ (node.querySelector('.priority-edit'));
  const select = /** @type {HTMLSelectElement} */ (node.querySelector('.priority-select'));
  edit.hidden = m.state !== 'queued' || !m.taskId;
  if (!edit.hidden) {
    showPriority(select, m.reprioritizing ?? m.priority ?? DEFAULT_PRIORITY);
    select.disabled = m.reprioritizing !== undefined || Boolean(m.cancelling);
  }
  const note = /** @type {HTMLElement} */ (node.querySelector('.answer-note'));
  note.hidden = !m.priorityError;
  note.textContent = m.priorityError ? `Priority not changed: ${m.priorityError}` : '';
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
    if (m.attempt < 2) return where;
    const how = m.continued ? ' · continuing' : m.restarted ? ' · started over' : '';
    return `${where} · attempt ${m.attempt}${how}`;
  }
  if (!m.taskId) return 'Sending…';
  const queued = m.retrying ? 'Retrying on another worker' : 'Queued';
  return m.waitingFor ? `${queued} · ${m.waitingFor}` : queued;
}

/** The tooltip of the status line: why the task is on its second (or later) attempt. @param {Record<string, any>} m */
function statusTitle(m) {
  if (!m.retryReason || m.attempt < 2) return '';
  const lost = `Attempt ${m.attempt - 1} was lost: ${m.retryReason}`;
  if (m.retrying) return `${lost}. Another worker will run it.`;
  if (m.continued) return `${lost}. This worker continues the answer from where it stopped.`;
  if (m.restarted) return `${lost}. This worker cannot continue an answer: it starts over.`;
  return lost;
}
