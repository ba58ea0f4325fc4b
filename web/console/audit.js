/**
 * The Audit view: who did what to the fleet (`GET /api/audit`, admin only),
 * newest first, filtered by action and time, a page at a time.
 */
import { h } from '../js/dom.js';
import { createRangePicker, errorText, field, select, timeCell } from './controls.js';
import { createPager, createTable } from './table.js';

/** The actions of proto/src/schemas/audit.ts (AUDIT_ACTIONS); a test checks they agree. */
export const AUDIT_ACTIONS = [
  'worker.drain',
  'worker.resume',
  'worker.stop',
  'worker.restart',
  'worker.config',
  'workers.cordon',
  'workers.uncordon',
  'fleet.stop',
  'fleet.resume',
  'credential.issue',
  'join-token.issue',
  'worker.revoke',
  'auth.refused',
  'auth.refused.more',
];
const PAGE_SIZE = 100;

/**
 * @param {HTMLElement} root
 * @param {import('./controls.js').ViewContext} ctx
 */
export function mountAudit(root, ctx) {
  const action = select(
    [['', 'Any action'], ...AUDIT_ACTIONS.map((a) => /** @type {[string, string]} */ ([a, a]))],
    { testid: 'audit-action' },
  );
  const range = createRangePicker({
    presets: ['any', '1h', '24h', '7d', 'custom'],
    initial: 'any',
    onChange: () => restart(),
  });
  const status = h('p', { class: 'cv-status', role: 'status', testid: 'audit-status' });
  const problem = h('p', { class: 'cv-error', role: 'alert', hidden: true });
  const table = createTable({
    label: 'Audit trail, newest first',
    key: (r) => r.id,
    empty: 'No record matches.',
    testid: 'audit-table',
    columns: [
      { title: 'When', cell: (r) => timeCell(r.at) },
      { title: 'Action', kind: 'mono', cell: (r) => r.action },
      {
        title: 'Result',
        cell: (r) => h('span', { class: `cv-result cv-result-${r.result}`, text: r.result }),
      },
      {
        title: 'Actor',
        cell: (r) => (r.actor ? `${r.actor}${r.role ? ` (${r.role})` : ''}` : '—'),
      },
      { title: 'Target', kind: 'mono', cell: (r) => r.target ?? '—' },
      { title: 'From', kind: 'mono', cell: (r) => r.from ?? '—' },
      {
        title: 'Detail',
        kind: 'wide',
        cell: (r) => {
          const text = [r.detail, r.count ? `×${r.count}` : ''].filter(Boolean).join(' ');
          return h('span', { title: text, text: text || '—' });
        },
      },
    ],
  });
  const pager = createPager({ onChange: () => void load(), noun: 'records' });
  action.addEventListener('change', () => restart());

  root.append(
    h('div', { class: 'cv-view cv-audit' }, [
      h('div', { class: 'cv-view-head' }, [h('h2', { text: 'Audit trail' })]),
      h('div', { class: 'cv-filters', role: 'group', 'aria-label': 'Filter the audit trail' }, [
        field('Action', action),
        range.element,
      ]),
      status,
      problem,
      table.element,
      pager.element,
    ]),
  );

  let seq = 0;
  async function load() {
    const mine = ++seq;
    const { from, to } = range.range();
    try {
      const page = await ctx.api.get('/api/audit', {
        action: action.value || undefined,
        since: from,
        until: to,
        limit: PAGE_SIZE,
        cursor: pager.cursor(),
      });
      if (mine !== seq) return;
      problem.hidden = true;
      table.render(page.records);
      pager.loaded(page.nextCursor);
      status.textContent = `${page.records.length} record${page.records.length === 1 ? '' : 's'}${page.nextCursor ? ', more are older' : ''}`;
    } catch (err) {
      if (mine !== seq) return;
      problem.hidden = false;
      problem.textContent = `Could not load the audit trail: ${errorText(err)}`;
    }
  }

  function restart() {
    pager.reset();
    void load();
  }

  return { activate: load };
}
