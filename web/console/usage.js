/**
 * The Usage view: finished tasks summed per tenant, model, worker, hour or
 * day (`GET /api/usage`) over a time range, with totals; exports the report,
 * and the fleet's per-second series (`GET /api/series`) for the same range.
 */
import { h } from '../js/dom.js';
import {
  createRangePicker,
  errorText,
  exactTime,
  exportButtons,
  field,
  formatCount,
} from './controls.js';
import { createTable } from './table.js';

/** @type {Array<[group: string, text: string]>} */
const GROUPS = [
  ['tenant', 'Tenant'],
  ['model', 'Model'],
  ['worker', 'Worker'],
  ['hour', 'Hour'],
  ['day', 'Day'],
];

/**
 * @param {HTMLElement} root
 * @param {import('./controls.js').ViewContext} ctx
 */
export function mountUsage(root, ctx) {
  const range = createRangePicker({
    presets: ['1h', '24h', '7d', 'custom'],
    initial: '24h',
    onChange: () => void load(),
    label: 'Range',
  });
  const boxes = GROUPS.map(([group, text]) => {
    const box = /** @type {HTMLInputElement} */ (
      h('input', { type: 'checkbox', value: group, testid: `usage-group-${group}` })
    );
    box.checked = group === 'tenant';
    box.addEventListener('change', () => void load());
    return h('label', { class: 'cv-check' }, [box, text]);
  });
  const tenant = /** @type {HTMLInputElement} */ (
    h('input', { type: 'text', placeholder: 'all', maxlength: '64', testid: 'usage-tenant' })
  );
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let typing;
  tenant.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => void load(), 300);
  });
  const status = h('p', { class: 'cv-status', role: 'status', testid: 'usage-status' });
  const problem = h('p', { class: 'cv-error', role: 'alert', hidden: true });
  const tableBox = h('div', { class: 'cv-usage-table' });

  const groups = () =>
    boxes
      .map((label) => /** @type {HTMLInputElement} */ (label.firstChild))
      .filter((box) => box.checked)
      .map((box) => box.value);
  const query = () => ({
    ...range.range(),
    groupBy: groups().join(',') || undefined,
    tenant: tenant.value.trim() || undefined,
  });

  root.append(
    h('div', { class: 'cv-view cv-usage' }, [
      h('div', { class: 'cv-view-head' }, [h('h2', { text: 'Usage' })]),
      h('div', { class: 'cv-filters', role: 'group', 'aria-label': 'Usage report' }, [
        range.element,
        h('fieldset', { class: 'cv-checks' }, [h('legend', { text: 'Group by' }), ...boxes]),
        field('Tenant', tenant),
      ]),
      status,
      problem,
      tableBox,
      h('div', { class: 'cv-exports' }, [
        exportButtons({ api: ctx.api, what: 'usage', path: '/api/usage', query, toast: ctx.toast }),
        exportButtons({
          api: ctx.api,
          what: 'metrics',
          path: '/api/series',
          query: () => range.range(),
          toast: ctx.toast,
        }),
      ]),
    ]),
  );

  let seq = 0;
  async function load() {
    const mine = ++seq;
    try {
      const report = await ctx.api.get('/api/usage', query());
      if (mine !== seq) return;
      problem.hidden = true;
      const table = usageTable(report.groupBy);
      table.render(report.rows);
      tableBox.replaceChildren(table.element);
      status.textContent = `${report.rows.length} row${report.rows.length === 1 ? '' : 's'} · ${exactTime(report.from)} – ${exactTime(report.to)}`;
    } catch (err) {
      if (mine !== seq) return;
      problem.hidden = false;
      problem.textContent = `Could not load usage: ${errorText(err)}`;
    }
  }

  return { activate: load };
}

/** @param {string[]} groupBy */
function usageTable(groupBy) {
  /** @type {Array<import('./table.js').Column<Record<string, any>>>} */
  const keys = groupBy.map((group) => {
    switch (group) {
      case 'tenant':
        return { title: 'Tenant', cell: (r) => r.tenant ?? '—' };
      case 'model':
        return { title: 'Model', cell: (r) => r.model ?? '—' };
      case 'worker':
        return { title: 'Worker', kind: 'mono', cell: (r) => r.workerId ?? '—' };
      default:
        return {
          title: group === 'hour' ? 'Hour' : 'Day',
          cell: (r) => (typeof r.period === 'number' ? period(r.period, group) : '—'),
        };
    }
  });
  /** @type {Array<[title: string, field: string, format: (n: number) => string]>} */
  const sums = [
    ['Requests', 'requests', formatCount],
    ['Completed', 'completed', formatCount],
    ['Input tokens', 'inputTokens', formatCount],
    ['Output tokens', 'outputTokens', formatCount],
    ['Compute', 'computeSeconds', (s) => `${s.toFixed(1)} s`],
    ['Cache hits', 'cacheHits', formatCount],
  ];
  const label = keys.length ? `Usage by ${groupBy.join(', ')}` : 'Usage';
  const first = keys.length ? keys : [{ title: 'All', cell: () => 'All' }];
  return createTable({
    label,
    key: (r) => JSON.stringify([r.tenant, r.model, r.workerId, r.period]),
    empty: 'No finished task in this range.',
    testid: 'usage-table',
    columns: [
      ...first,
      ...sums.map(([title, name, format]) => ({
        title,
        kind: /** @type {'num'} */ ('num'),
        cell: (/** @type {Record<string, any>} */ r) => format(r[name] ?? 0),
      })),
    ],
    footer: (rows) => [
      'Total',
      ...first.slice(1).map(() => ''),
      ...sums.map(([, name, format]) => format(rows.reduce((sum, r) => sum + (r[name] ?? 0), 0))),
    ],
  });
}

/** @param {number} start @param {string} group */
function period(start, group) {
  const d = new Date(start);
  return group === 'hour'
    ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
}
