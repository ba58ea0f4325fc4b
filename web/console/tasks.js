/**
 * The Tasks view: the task history (`GET /api/tasks`) filtered by state,
 * tenant, model, worker, time and a search, newest first, a page at a time;
 * refreshed every few seconds while on screen; a row opens the task's detail.
 * The filter of the moment exports as CSV or JSON.
 */
import { h } from '../js/dom.js';
import { formatMs } from '../js/format.js';
import {
  createRangePicker,
  errorText,
  exportButtons,
  field,
  formatCount,
  refreshWhileVisible,
  select,
  setOptions,
  stateBadge,
  timeCell,
} from './controls.js';
import { createPager, createTable } from './table.js';
import { createTaskDetail } from './task-detail.js';

const PAGE_SIZE = 50;
/** MAX_TASK_PAGE of proto/src/schemas/console.ts. */
const EXPORT_LIMIT = 500;
const REFRESH_MS = 4_000;
const SEARCH_DEBOUNCE_MS = 300;
const STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'];

/**
 * @param {HTMLElement} root
 * @param {import('./controls.js').ViewContext} ctx
 */
export function mountTasks(root, ctx) {
  const search = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'search',
      placeholder: 'Task id or prompt text',
      maxlength: '200',
      testid: 'tasks-search',
    })
  );
  const state = select(
    [['', 'Any state'], ...STATES.map((s) => /** @type {[string, string]} */ ([s, s]))],
    { testid: 'tasks-state' },
  );
  const tenant = /** @type {HTMLInputElement} */ (
    h('input', { type: 'text', placeholder: 'any', maxlength: '64', testid: 'tasks-tenant' })
  );
  const model = select([['', 'Any model']], { testid: 'tasks-model' });
  const worker = /** @type {HTMLInputElement} */ (
    h('input', { type: 'text', placeholder: 'any', maxlength: '128', testid: 'tasks-worker' })
  );
  const range = createRangePicker({
    presets: ['any', '1h', '24h', '7d', 'custom'],
    initial: 'any',
    onChange: () => restart(),
    label: 'Submitted',
  });
  const status = h('p', { class: 'cv-status', role: 'status', testid: 'tasks-status' });
  const updated = h('span', { class: 'cv-muted' });
  const problem = h('p', { class: 'cv-error', role: 'alert', hidden: true });

  const detail = createTaskDetail({
    api: ctx.api,
    onChanged: () => void load(),
    onClose: () => {
      detail.hide();
      table.select(undefined);
    },
  });
  const table = createTable({
    label: 'Tasks, newest first',
    key: (t) => t.id,
    empty: 'No task matches.',
    testid: 'tasks-table',
    onSelect: (t) => void detail.show(t.id),
    columns: [
      { title: 'Task', kind: 'mono', cell: (t) => shortId(t.id) },
      { title: 'State', cell: (t) => stateBadge(t.state) },
      { title: 'Tenant', cell: (t) => t.tenant },
      { title: 'Model', cell: (t) => t.model },
      { title: 'Worker', kind: 'mono', cell: (t) => t.workerId ?? '—' },
      { title: 'Attempts', kind: 'num', cell: (t) => String(t.attempts) },
      { title: 'Submitted', cell: (t) => timeCell(t.submittedAt) },
      { title: 'Total', kind: 'num', cell: (t) => formatMs(t.totalMs) },
      { title: 'TTFT', kind: 'num', cell: (t) => formatMs(t.ttftMs) },
      { title: 'Tokens', kind: 'num', cell: tokens },
      {
        title: 'Prompt',
        kind: 'wide',
        cell: (t) => h('span', { title: t.prompt, text: t.prompt }),
      },
    ],
  });
  const pager = createPager({ onChange: () => void load(), noun: 'tasks' });

  const filters = h('form', { class: 'cv-filters', role: 'search', 'aria-label': 'Filter tasks' }, [
    field('Search', search, 'cv-field-grow'),
    field('State', state),
    field('Tenant', tenant),
    field('Model', model),
    field('Worker', worker),
    range.element,
  ]);
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    restart();
  });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let typing;
  const later = () => {
    clearTimeout(typing);
    typing = setTimeout(restart, SEARCH_DEBOUNCE_MS);
  };
  search.addEventListener('input', later);
  tenant.addEventListener('input', later);
  worker.addEventListener('input', later);
  state.addEventListener('change', restart);
  model.addEventListener('change', restart);

  const query = () => ({
    q: search.value.trim() || undefined,
    state: state.value || undefined,
    tenant: tenant.value.trim() || undefined,
    model: model.value || undefined,
    workerId: worker.value.trim() || undefined,
    ...range.range(),
  });

  root.append(
    h('div', { class: 'cv-view cv-tasks' }, [
      h('div', { class: 'cv-view-head' }, [
        h('h2', { text: 'Tasks' }),
        exportButtons({
          api: ctx.api,
          what: 'tasks',
          path: '/api/tasks',
          // The newest EXPORT_LIMIT tasks the filter matches (the most one answer holds).
          query: () => ({ ...query(), limit: EXPORT_LIMIT }),
          toast: ctx.toast,
        }),
      ]),
      filters,
      h('div', { class: 'cv-status-line' }, [status, updated]),
      problem,
      h('div', { class: 'cv-split' }, [
        h('div', { class: 'cv-split-main' }, [table.element, pager.element]),
        detail.element,
      ]),
    ]),
  );

  let seq = 0;
  async function load() {
    const mine = ++seq;
    try {
      const page = await ctx.api.get('/api/tasks', {
        ...query(),
        limit: PAGE_SIZE,
        cursor: pager.cursor(),
      });
      if (mine !== seq) return;
      problem.hidden = true;
      table.render(page.tasks);
      table.select(detail.taskId());
      pager.loaded(page.nextCursor);
      const more = page.nextCursor ? ', more are older' : '';
      status.textContent = `${page.tasks.length} task${page.tasks.length === 1 ? '' : 's'}${more}`;
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (mine !== seq) return;
      problem.hidden = false;
      problem.textContent = `Could not load tasks: ${errorText(err)}`;
    }
  }

  function restart() {
    clearTimeout(typing);
    pager.reset();
    void load();
  }

  /** The fleet's models now, and the one chosen even if no worker serves it any more. */
  function syncModels() {
    const names = new Set(ctx.models());
    if (model.value) names.add(model.value);
    setOptions(model, [
      ['', 'Any model'],
      ...[...names].sort().map((m) => /** @type {[string, string]} */ ([m, m])),
    ]);
  }

  refreshWhileVisible(root, REFRESH_MS, async () => {
    syncModels();
    await Promise.all([load(), detail.refresh()]);
  });

  return {
    async activate() {
      syncModels();
      await Promise.all([load(), detail.refresh()]);
    },
  };
}

/** The id's tail is what tells tasks apart; the full id is on hover. @param {string} id */
function shortId(id) {
  const tail = id.length > 14 ? `…${id.slice(-12)}` : id;
  return h('span', { title: id, text: tail });
}

/** @param {Record<string, any>} t */
function tokens(t) {
  if (t.inputTokens === undefined && t.outputTokens === undefined) return t.cached ? 'cached' : '—';
  const text = `${formatCount(t.inputTokens)} / ${formatCount(t.outputTokens)}`;
  return h('span', { title: 'input / output tokens', text: t.cached ? `${text} (cached)` : text });
}
