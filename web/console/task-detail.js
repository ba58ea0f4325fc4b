/**
 * One task in full: its facts (`GET /api/tasks/{id}`), what happened to it
 * (`GET /api/tasks/{id}/timeline`), the answer or error, and what an
 * operator may do to it: cancel, retry, move to another priority. Each
 * action's outcome, the master's refusal included, is said in the panel.
 */
import { clear, h } from '../js/dom.js';
import { formatMs } from '../js/format.js';
import { button, errorText, exactTime, formatCount, stateBadge, timeCell } from './controls.js';

const FINISHED = new Set(['completed', 'failed', 'cancelled']);
/** The master writes a task's history within about a second of a change. */
const CATCH_UP_MS = 1_200;

/**
 * @param {object} deps
 * @param {ReturnType<typeof import('./api.js').createApi>} deps.api
 * @param {() => void} deps.onChanged after an action: the list refreshes
 * @param {() => void} deps.onClose
 */
export function createTaskDetail({ api, onChanged, onClose }) {
  const title = h('h3', { class: 'cv-detail-title', tabindex: '-1' });
  const facts = h('dl', { class: 'cv-facts', testid: 'task-facts' });
  const timeline = h('ol', { class: 'cv-timeline', testid: 'task-timeline' });
  const output = h('div', { class: 'cv-output', testid: 'task-output' });
  const outcome = h('p', { class: 'cv-outcome', role: 'status', testid: 'task-action-result' });
  const priority = /** @type {HTMLInputElement} */ (
    h('input', { type: 'number', min: '0', max: '1000', step: '1', testid: 'priority-input' })
  );
  const cancel = button('Cancel task', () => void act('cancel'), { testid: 'task-cancel' });
  const retry = button('Retry', () => void act('retry'), { testid: 'task-retry' });
  const reprioritize = button('Set priority', () => void act('priority'), {
    testid: 'task-reprioritize',
  });
  const actions = h('div', { class: 'cv-actions' }, [
    cancel,
    retry,
    h('span', { class: 'cv-inline-field' }, [
      h('label', { class: 'cv-field-label', text: 'Priority', for: 'cv-priority' }),
      priority,
      reprioritize,
    ]),
  ]);
  priority.id = 'cv-priority';
  const element = h(
    'section',
    { class: 'cv-detail', 'aria-label': 'Task detail', testid: 'task-detail', hidden: true },
    [
      h('div', { class: 'cv-detail-head' }, [
        title,
        button('Close', () => onClose(), { 'aria-label': 'Close task detail' }),
      ]),
      facts,
      actions,
      outcome,
      h('h4', { text: 'Timeline' }),
      timeline,
      output,
    ],
  );
  /** @type {string | undefined} */
  let taskId;
  /** @type {Record<string, any> | undefined} */
  let view;
  /** The task has finished and its timeline says so: nothing more will change. */
  let settled = false;
  let seq = 0;

  async function load() {
    if (!taskId) return;
    const id = taskId;
    const mine = ++seq;
    const [task, story] = await Promise.allSettled([
      api.get(`/api/tasks/${encodeURIComponent(id)}`),
      api.get(`/api/tasks/${encodeURIComponent(id)}/timeline`),
    ]);
    if (mine !== seq || id !== taskId) return;
    element.dataset.state = task.status === 'fulfilled' ? task.value.state : 'unknown';
    if (task.status === 'fulfilled') {
      view = task.value;
      renderFacts(task.value, story.status === 'fulfilled' ? story.value.task : undefined);
      renderOutput(task.value);
    } else {
      view = undefined;
      clear(facts);
      clear(output);
      output.appendChild(
        h('p', { class: 'cv-error', text: `Could not load the task: ${errorText(task.reason)}` }),
      );
    }
    clear(timeline);
    const last = story.status === 'fulfilled' ? story.value.events.at(-1)?.kind : undefined;
    // The history is written a moment after the task changes: until it shows the end, ask again.
    settled = Boolean(
      view && FINISHED.has(view.state) && (story.status === 'rejected' || FINISHED.has(last)),
    );
    if (story.status === 'fulfilled') {
      const start = story.value.task?.submittedAt ?? story.value.events[0]?.at ?? 0;
      for (const event of story.value.events) timeline.appendChild(timelineItem(event, start));
    } else {
      timeline.appendChild(
        h('li', { class: 'cv-muted', text: `No timeline: ${errorText(story.reason)}` }),
      );
    }
    syncActions();
  }

  /** @param {Record<string, any>} task @param {Record<string, any> | undefined} summary */
  function renderFacts(task, summary) {
    const t = task.timings ?? {};
    const usage = task.usage
      ? `${formatCount(task.usage.inputTokens)} in · ${formatCount(task.usage.outputTokens)} out${task.usage.estimated ? ' (estimated)' : ''}`
      : undefined;
    /** @type {Array<[string, Node | string | undefined]>} */
    const rows = [
      ['State', stateBadge(task.state)],
      ['Model', task.model],
      ['Tenant', summary?.tenant],
      ['Priority', String(task.priority)],
      ['Attempts', String(task.attempt)],
      ['Worker', task.workerId ? `${task.workerId} (${task.workerKind ?? '?'})` : undefined],
      ['Submitted', typeof t.submittedAt === 'number' ? timeCell(t.submittedAt) : undefined],
      ['Queued for', formatMs(t.queueMs)],
      ['Processing', formatMs(t.processingMs)],
      ['Total', formatMs(t.totalMs)],
      ['First token', formatMs(t.ttftMs)],
      ['Tokens', usage],
      [
        'Cache',
        task.cache ? `answered from the cache (${exactTime(task.cache.cachedAt)})` : undefined,
      ],
      ['Requires', requirements(task.requires)],
    ];
    clear(facts);
    for (const [name, value] of rows) {
      if (value === undefined || value === '—') continue;
      facts.append(h('dt', { text: name }), h('dd', {}, [value]));
    }
  }

  /** @param {Record<string, any>} task */
  function renderOutput(task) {
    clear(output);
    if (task.error) {
      output.append(
        h('h4', { text: 'Error' }),
        h('pre', { class: 'cv-pre cv-error', text: task.error }),
      );
    }
    if (task.result !== undefined) {
      output.append(h('h4', { text: 'Answer' }), h('pre', { class: 'cv-pre', text: task.result }));
    }
    if (!task.error && task.result === undefined) {
      output.append(h('p', { class: 'cv-muted', text: 'No answer yet.' }));
    }
  }

  function syncActions() {
    const state = view?.state;
    cancel.disabled = !state || FINISHED.has(state);
    retry.disabled = !state || (state !== 'failed' && state !== 'cancelled');
    const queued = state === 'queued';
    reprioritize.disabled = !queued;
    priority.disabled = !queued;
    if (view && document.activeElement !== priority) priority.value = String(view.priority);
  }

  /** @param {'cancel' | 'retry' | 'priority'} what */
  async function act(what) {
    if (!taskId) return;
    const id = taskId;
    const path = `/api/tasks/${encodeURIComponent(id)}`;
    say('pending', 'Working…');
    try {
      if (what === 'cancel') {
        const after = await api.send('DELETE', path);
        say('ok', `Cancelled: the task is ${after?.state ?? 'cancelled'}.`);
      } else if (what === 'retry') {
        const { id: newId } = await api.send('POST', `${path}/retry`);
        say('ok', newId === id ? 'Queued again.' : `Retried as ${newId}. `);
        if (newId !== id) {
          outcome.appendChild(button('Open it', () => show(newId), { testid: 'open-retry' }));
        }
      } else {
        const value = Number(priority.value);
        if (!Number.isInteger(value) || value < 0 || value > 1000) {
          say('error', 'Priority must be a whole number from 0 to 1000.');
          return;
        }
        const after = await api.send('PATCH', path, { priority: value });
        say('ok', `Priority is now ${after?.priority ?? value}.`);
      }
      onChanged();
    } catch (err) {
      say('error', `The master refused: ${errorText(err)}`);
    }
    await load();
    // The history is written a moment after the change: look again once it has caught up.
    setTimeout(() => {
      if (taskId !== id) return;
      void load();
      onChanged();
    }, CATCH_UP_MS);
  }

  /** @param {'ok' | 'error' | 'pending'} kind @param {string} text */
  function say(kind, text) {
    outcome.dataset.kind = kind;
    outcome.textContent = text;
  }

  /** @param {string} id */
  function show(id) {
    const other = id !== taskId;
    taskId = id;
    element.hidden = false;
    title.textContent = id;
    title.title = id;
    if (other) {
      view = undefined;
      settled = false;
      say('ok', '');
      delete outcome.dataset.kind;
      clear(facts);
      clear(timeline);
      clear(output);
      syncActions();
    }
    title.focus({ preventScroll: true });
    element.scrollIntoView({ block: 'nearest' });
    return load();
  }

  return {
    element,
    show,
    /** Reloads the task on show until it has finished and its timeline says so. */
    refresh() {
      if (!taskId || element.hidden || settled) return Promise.resolve();
      return load();
    },
    hide() {
      taskId = undefined;
      element.hidden = true;
    },
    /** The task on show. */
    taskId: () => taskId,
  };
}

/** @param {Record<string, any> | undefined} requires */
function requirements(requires) {
  if (!requires) return undefined;
  const parts = [];
  if (requires.gpu) parts.push('GPU');
  for (const [k, v] of Object.entries(requires.labels ?? {})) parts.push(`${k}=${v}`);
  return parts.length ? parts.join(', ') : undefined;
}

/** @param {Record<string, any>} event @param {number} start */
function timelineItem(event, start) {
  const worker = event.workerId ? ` on ${event.workerId}` : '';
  const attempt = event.attempt ? `Attempt ${event.attempt}` : 'Attempt';
  /** @type {Record<string, string>} */
  const text = {
    queued: 'Queued',
    assigned: `${attempt} started${worker}`,
    retrying: `${attempt}${worker} ended${event.detail ? `: ${event.detail}` : ''} — queued again`,
    reprioritized: `Priority set to ${event.detail ?? '?'}`,
    completed: `Completed${worker}`,
    failed: `Failed${worker}${event.detail ? `: ${event.detail}` : ''}`,
    cancelled: `Cancelled${event.detail ? `: ${event.detail}` : ''}`,
  };
  const offset = start && event.at >= start ? `+${formatMs(event.at - start)}` : '';
  return h('li', { class: `cv-event cv-event-${event.kind}`, 'data-kind': event.kind }, [
    h('span', { class: 'cv-event-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'cv-event-text', text: text[event.kind] ?? event.kind }),
    h('span', { class: 'cv-event-time' }, [
      h('time', { datetime: new Date(event.at).toISOString(), text: exactTime(event.at) }),
      offset ? ` · ${offset}` : '',
    ]),
  ]);
}
