/**
 * The Alerts view: what fires now, most severe first and prominent, and
 * below it the alerts that resolved lately. Loaded from `GET /api/alerts`
 * when shown, then kept current by the shell's live `alerts` event.
 */
import { clear, h } from '../js/dom.js';
import { formatMs } from '../js/format.js';
import { errorText, exactTime, refreshWhileVisible, timeCell } from './controls.js';

/** @type {Record<string, string>} */
const RULE_TEXT = {
  worker_down: 'Worker down',
  backlog: 'Backlog',
  error_rate: 'Error rate',
  latency_p95: 'Latency p95',
  no_worker_for_model: 'No worker for model',
};
/** Relative times ("3 min ago") are redrawn this often while the view is on screen. */
const RETICK_MS = 15_000;

/**
 * @param {HTMLElement} root
 * @param {import('./controls.js').ViewContext} ctx
 */
export function mountAlerts(root, ctx) {
  const summary = h('p', { class: 'cv-status', role: 'status', testid: 'alerts-summary' });
  const firing = h('ul', { class: 'cv-alerts', testid: 'alerts-firing', 'aria-label': 'Firing' });
  const recent = h('ul', {
    class: 'cv-alerts cv-alerts-resolved',
    testid: 'alerts-recent',
    'aria-label': 'Recently resolved',
  });
  const problem = h('p', { class: 'cv-error', role: 'alert', hidden: true });
  root.append(
    h('div', { class: 'cv-view cv-alerts-view' }, [
      h('div', { class: 'cv-view-head' }, [h('h2', { text: 'Alerts' })]),
      summary,
      problem,
      h('h3', { text: 'Firing now' }),
      firing,
      h('h3', { text: 'Recently resolved' }),
      recent,
    ]),
  );

  /** @type {{ firing: any[], recent: any[] } | undefined} */
  let last;

  /** @param {{ firing: any[], recent: any[] }} alerts */
  function render(alerts) {
    last = alerts;
    const order = (/** @type {any} */ a) => (a.severity === 'critical' ? 0 : 1);
    const now = [...alerts.firing].sort((a, b) => order(a) - order(b) || b.firedAt - a.firedAt);
    const past = [...alerts.recent].sort(
      (a, b) => (b.resolvedAt ?? b.firedAt) - (a.resolvedAt ?? a.firedAt),
    );
    const critical = now.filter((a) => a.severity === 'critical').length;
    summary.textContent =
      now.length === 0
        ? 'Nothing is firing.'
        : `${now.length} firing${critical ? `, ${critical} critical` : ''}.`;
    summary.dataset.firing = String(now.length);
    clear(firing);
    if (now.length === 0) firing.appendChild(h('li', { class: 'cv-empty', text: 'All clear.' }));
    for (const alert of now) firing.appendChild(alertItem(alert));
    clear(recent);
    if (past.length === 0) {
      recent.appendChild(h('li', { class: 'cv-empty', text: 'None lately.' }));
    }
    for (const alert of past) recent.appendChild(alertItem(alert));
  }

  async function load() {
    try {
      render(await ctx.api.get('/api/alerts'));
      problem.hidden = true;
    } catch (err) {
      problem.hidden = false;
      problem.textContent = `Could not load alerts: ${errorText(err)}`;
    }
  }

  ctx.on('alerts', (alerts) => {
    if (alerts && Array.isArray(alerts.firing) && Array.isArray(alerts.recent)) render(alerts);
  });
  refreshWhileVisible(root, RETICK_MS, () => {
    if (last) render(last);
  });

  return { activate: load };
}

/** @param {Record<string, any>} alert */
function alertItem(alert) {
  const resolved = alert.state === 'resolved';
  const when = resolved
    ? [
        'resolved ',
        timeCell(alert.resolvedAt ?? alert.firedAt),
        ` after ${formatMs((alert.resolvedAt ?? alert.firedAt) - alert.firedAt)}`,
      ]
    : ['since ', timeCell(alert.firedAt)];
  return h(
    'li',
    {
      class: `cv-alert cv-alert-${alert.severity} ${resolved ? 'is-resolved' : ''}`,
      'data-rule': alert.rule,
      'data-id': alert.id,
    },
    [
      h('div', { class: 'cv-alert-head' }, [
        h('span', { class: `cv-severity cv-severity-${alert.severity}`, text: alert.severity }),
        h('strong', { class: 'cv-alert-rule', text: RULE_TEXT[alert.rule] ?? alert.rule }),
        h('span', { class: 'cv-alert-subject', text: alert.subject }),
      ]),
      h('p', { class: 'cv-alert-message', text: alert.message }),
      h('p', { class: 'cv-alert-when', title: exactTime(alert.firedAt) }, when),
    ],
  );
}
