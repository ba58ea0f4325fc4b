/**
 * The operator console's shell: the admin token, the live link and its
 * state in the header, the emergency-stop banner, toasts, and the tabs (the
 * URL hash keeps the open one). Overview and Workers are built here; the
 * other tabs are modules loaded on first view, each exporting
 * `mount<Name>(root, ctx)` → `{ activate() }`, where
 * `ctx = { api, on(event, fn) → unsubscribe, toast(message, kind?), models() }`
 * and `on` hears the live events 'alerts', 'workers', 'point' and 'fleet'.
 */
import { createTokenField } from '../js/access-token.js';
import { $, h } from '../js/dom.js';
import { setupThemeToggle } from '../js/layout.js';
import { createApi } from './api.js';
import { createDispatchBanner } from './fleet.js';
import { CONSOLE_EVENTS, createConsoleLink } from './link.js';
import { mountOverview } from './overview.js';
import { mountWorkers } from './workers.js';

/** @typedef {{ activate(): void }} TabView */
/**
 * @typedef {{
 *   api: ReturnType<typeof createApi>,
 *   on: (event: 'alerts' | 'workers' | 'point' | 'fleet', fn: (payload: any) => void) => () => void,
 *   toast: (message: string, kind?: 'info' | 'error') => void,
 *   models: () => string[],
 * }} ConsoleContext
 */

/** @type {Array<{ id: string, label: string, load: () => Promise<(root: HTMLElement, ctx: ConsoleContext) => TabView> }>} */
const TABS = [
  { id: 'overview', label: 'Overview', load: async () => mountOverview },
  { id: 'workers', label: 'Workers', load: async () => mountWorkers },
  { id: 'tasks', label: 'Tasks', load: async () => (await import('./tasks.js')).mountTasks },
  { id: 'usage', label: 'Usage', load: async () => (await import('./usage.js')).mountUsage },
  { id: 'alerts', label: 'Alerts', load: async () => (await import('./alerts.js')).mountAlerts },
  { id: 'audit', label: 'Audit', load: async () => (await import('./audit.js')).mountAudit },
  {
    id: 'test',
    label: 'Test',
    load: async () => (await import('./test-panel.js')).mountTestPanel,
  },
];

const STATE_TEXT = {
  connecting: 'Connecting…',
  connected: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  unauthorized: 'Admin token needed',
  forbidden: 'Not an admin token',
};
const PROBLEM_TEXT = {
  unauthorized: 'The console needs an admin token: enter it in the token field at the top.',
  forbidden:
    'This token belongs to a user, not an admin: the console needs an admin token (an API_TOKENS entry tenant:token:admin).',
};
const TOAST_MS = 5_000;

// ── live state, shared by every tab ─────────────────────────────────────────

/** @type {Map<string, Set<(payload: any) => void>>} */
const listeners = new Map();
/** The last payload of each live event, so a tab mounted late starts from it. */
const latest = /** @type {Record<string, any>} */ ({});
/** The newest series point held: a reconnect asks only for what came after. */
let lastPointAt;

/** @param {string} event @param {unknown} payload */
function publish(event, payload) {
  latest[event] = payload;
  for (const fn of listeners.get(event) ?? []) {
    try {
      fn(payload);
    } catch (err) {
      console.error(err);
    }
  }
}

/** @type {ConsoleContext['on']} */
function on(event, fn) {
  let set = listeners.get(event);
  if (!set) {
    set = new Set();
    listeners.set(event, set);
  }
  set.add(fn);
  if (event !== 'point' && latest[event] !== undefined) fn(latest[event]);
  return () => set.delete(fn);
}

/** @param {string} name @param {any} payload */
function intake(name, payload) {
  if (!payload || typeof payload !== 'object') return;
  switch (name) {
    case CONSOLE_EVENTS.state: {
      // A snapshot after a reconnect holds only the points after `since`.
      const points = Array.isArray(payload.points) ? payload.points : [];
      publish('points', points);
      for (const p of points) if (p && p.at > (lastPointAt ?? 0)) lastPointAt = p.at;
      publish('workers', payload.workers);
      publish('fleet', payload.fleet);
      publish('alerts', payload.alerts);
      return;
    }
    case CONSOLE_EVENTS.point:
      if (typeof payload.at !== 'number' || payload.at <= (lastPointAt ?? 0)) return;
      lastPointAt = payload.at;
      publish('point', payload);
      return;
    case CONSOLE_EVENTS.workers:
      publish('workers', payload);
      return;
    case CONSOLE_EVENTS.fleet:
      publish('fleet', payload);
      return;
    case CONSOLE_EVENTS.alerts:
      publish('alerts', payload);
      return;
  }
}

// ── chrome ──────────────────────────────────────────────────────────────────

const toasts = $('#toasts');
/** @type {ConsoleContext['toast']} */
function toast(message, kind = 'info') {
  const node = h('div', {
    class: `toast toast-${kind === 'error' ? 'error' : 'info'}`,
    role: kind === 'error' ? 'alert' : 'status',
    testid: 'toast',
    text: message,
  });
  toasts.append(node);
  setTimeout(() => node.remove(), TOAST_MS);
}

const problem = $('#console-problem');
/** @param {string | null} text */
function showProblem(text) {
  problem.hidden = !text;
  problem.textContent = text ?? '';
}

// ── wiring ──────────────────────────────────────────────────────────────────

setupThemeToggle();
const status = $('[data-testid="connection-status"]');
const token = createTokenField({
  input: /** @type {HTMLInputElement} */ ($('#token')),
  onChange: (value) => link.setToken(value),
});
// The field sits in a form only so the browser treats it as a password field; nothing is posted.
$('#token-form').addEventListener('submit', (e) => e.preventDefault());
const api = createApi(() => token.value);
/** @type {ConsoleContext} */
const ctx = {
  api,
  on,
  toast,
  models: () => (Array.isArray(latest.workers?.models) ? latest.workers.models : []),
};

const link = createConsoleLink({
  io: /** @type {any} */ (window).io,
  token: token.value,
  since: () => lastPointAt,
  onState: (state, reason) => {
    status.dataset.state = state === 'forbidden' ? 'unauthorized' : state;
    const text = STATE_TEXT[state];
    /** @type {HTMLElement} */ (status.querySelector('.conn-text')).textContent = text;
    status.title = reason ?? 'Live link to the master';
    if (state === 'connected') {
      showProblem(null);
      token.accepted();
    } else if (state === 'unauthorized' || state === 'forbidden') {
      showProblem(`${PROBLEM_TEXT[state]}${reason ? ` (${reason})` : ''}`);
      token.ask();
    }
  },
  onEvent: intake,
});

createDispatchBanner({
  banner: $('#dispatch-banner'),
  text: $('#dispatch-banner-text'),
  resume: /** @type {HTMLButtonElement} */ ($('#banner-resume')),
  ctx,
});

// ── tabs ────────────────────────────────────────────────────────────────────

const tabList = $('#tab-list');
const main = $('#console-main');
/** @type {Map<string, { button: HTMLElement, panel: HTMLElement, view?: Promise<TabView | undefined> }>} */
const tabs = new Map();
for (const tab of TABS) {
  const button = h('button', {
    type: 'button',
    role: 'tab',
    id: `tab-${tab.id}`,
    class: 'tab',
    testid: `tab-${tab.id}`,
    'aria-controls': `panel-${tab.id}`,
    'aria-selected': 'false',
    tabindex: '-1',
    text: tab.label,
    onclick: () => {
      location.hash = tab.id;
    },
  });
  const panel = h('section', {
    role: 'tabpanel',
    id: `panel-${tab.id}`,
    class: `tab-panel tab-panel-${tab.id}`,
    testid: `panel-${tab.id}`,
    'aria-labelledby': `tab-${tab.id}`,
    hidden: true,
  });
  tabList.append(button);
  main.append(panel);
  tabs.set(tab.id, { button, panel });
}
// The Alerts tab carries how many fire, so an operator on any tab sees one start.
const alertsButton = tabs.get('alerts')?.button;
if (alertsButton) {
  const badge = h('span', { class: 'tab-badge', testid: 'alerts-badge', hidden: true });
  alertsButton.append(badge);
  ctx.on('alerts', (/** @type {{ firing: unknown[] }} */ alerts) => {
    const firing = alerts.firing.length;
    badge.textContent = String(firing);
    badge.hidden = firing === 0;
    badge.setAttribute('aria-label', `${firing} firing`);
  });
}
tabList.addEventListener('keydown', (e) => {
  const ids = TABS.map((t) => t.id);
  const at = ids.indexOf(currentTab());
  const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
  if (!step) return;
  e.preventDefault();
  const next = ids[(at + step + ids.length) % ids.length];
  location.hash = next;
  tabs.get(next)?.button.focus();
});

function currentTab() {
  const id = location.hash.replace(/^#/, '');
  return tabs.has(id) ? id : 'overview';
}

/** @param {string} id */
function load(id) {
  const tab = tabs.get(id);
  const spec = TABS.find((t) => t.id === id);
  if (!tab || !spec) return Promise.resolve(undefined);
  tab.view ??= spec
    .load()
    .then((mount) => {
      if (typeof mount !== 'function') throw new Error('no mount function');
      return mount(tab.panel, ctx);
    })
    .catch((err) => {
      console.error(err);
      tab.panel.replaceChildren(
        h('div', { class: 'empty-state', testid: 'tab-unavailable' }, [
          h('h2', { text: `${spec.label} is not available` }),
          h('p', {
            text: 'This part of the console could not be loaded. Reload the page to try again.',
          }),
        ]),
      );
      return undefined;
    });
  return tab.view;
}

function showTab() {
  const id = currentTab();
  for (const [tabId, tab] of tabs) {
    const selected = tabId === id;
    tab.button.setAttribute('aria-selected', String(selected));
    tab.button.tabIndex = selected ? 0 : -1;
    tab.panel.hidden = !selected;
  }
  document.title = `flota · console · ${TABS.find((t) => t.id === id)?.label ?? ''}`;
  void load(id).then((view) => {
    if (currentTab() === id) view?.activate();
  });
}
window.addEventListener('hashchange', showTab);
showTab();
