/**
 * The live worker panel, redrawn from each `workers:update`: a card per
 * listed worker (the master lists at most 200, online first) and the fleet's
 * numbers from its summary, with a line for the workers not listed.
 */
import { h } from './dom.js';
import { formatPct } from './format.js';

/** @param {{ list: HTMLElement, summary: HTMLElement, count: HTMLElement }} els */
export function createWorkersView({ list, summary, count }) {
  /** @param {unknown} workers @param {Record<string, any>} [fleet] */
  function render(workers, fleet) {
    const all = Array.isArray(workers) ? workers.filter(isWorker) : [];
    all.sort((a, b) => order(a) - order(b) || a.id.localeCompare(b.id));
    const shown = all.filter((w) => w.state === 'online');
    const online = Number(fleet?.online ?? shown.length);
    const slots = Number(fleet?.slots ?? shown.reduce((n, w) => n + (w.slots || 0), 0));
    const active = Number(fleet?.active ?? shown.reduce((n, w) => n + (w.active || 0), 0));
    const total = online + Number(fleet?.offline ?? all.length - shown.length);
    const n = (/** @type {number} */ v) => v.toLocaleString();
    count.textContent = n(online);
    summary.textContent = total
      ? `${n(online)} online · ${n(active)}/${n(slots)} slots busy`
      : 'No workers connected yet';
    const cards = all.length ? all.map(card) : [emptyCard()];
    if (total > all.length) cards.push(moreCard(total - all.length));
    list.replaceChildren(...cards);
  }
  return { render };
}

/** @param {any} w @returns {w is Record<string, any>} */
function isWorker(w) {
  return typeof w === 'object' && w !== null && typeof w.id === 'string';
}

/** @param {Record<string, any>} w */
function order(w) {
  return w.state === 'online' ? 0 : 1;
}

/** @param {number} n workers the master did not list */
function moreCard(n) {
  return h('li', {
    class: 'worker-more',
    testid: 'worker-more',
    text: `and ${n.toLocaleString()} more worker${n === 1 ? '' : 's'}`,
  });
}

function emptyCard() {
  return h('li', { class: 'worker-empty' }, [
    h('p', { text: 'Workers appear here as soon as they connect.' }),
    h('code', { text: 'flota worker --kind cpu' }),
  ]);
}

/** @param {Record<string, any>} w */
function card(w) {
  const online = w.state === 'online';
  const kind = w.kind === 'gpu' ? 'gpu' : 'cpu';
  const slots = Math.max(1, Number(w.slots) || 1);
  const active = Math.max(0, Number(w.active) || 0);
  const load = Math.min(100, Math.round((active / slots) * 100));
  const bar = h('span', { class: 'bar-fill' });
  bar.style.width = `${load}%`;
  const gpus = Array.isArray(w.gpus) ? w.gpus : [];
  return h(
    'li',
    {
      class: `worker-card${online ? '' : ' is-offline'}`,
      testid: 'worker-card',
      'data-worker-id': w.id,
      'data-state': online ? 'online' : 'offline',
    },
    [
      h('div', { class: 'worker-head' }, [
        h('span', {
          class: `dot ${online ? 'dot-online' : 'dot-offline'}`,
          role: 'img',
          'aria-label': online ? 'online' : 'offline',
          title: online ? 'online' : 'offline',
        }),
        h('span', { class: 'worker-id', testid: 'worker-id', text: w.id, title: w.host || w.id }),
        h('span', {
          class: `badge badge-${kind}`,
          testid: 'worker-kind',
          text: kind.toUpperCase(),
        }),
      ]),
      h(
        'div',
        { class: 'worker-models' },
        (Array.isArray(w.models) ? w.models : []).map((m) =>
          h('span', { class: 'chip', text: String(m) }),
        ),
      ),
      h('div', { class: 'worker-load' }, [
        h('div', { class: 'worker-load-label' }, [
          h('span', { text: 'Slots' }),
          h('span', { testid: 'worker-slots', text: `${active}/${slots}` }),
        ]),
        h(
          'div',
          {
            class: `bar${load >= 100 ? ' is-full' : ''}`,
            role: 'progressbar',
            'aria-label': `${w.id} slots in use`,
            'aria-valuemin': '0',
            'aria-valuemax': String(slots),
            'aria-valuenow': String(active),
          },
          [bar],
        ),
      ]),
      h('dl', { class: 'worker-stats' }, [
        stat('CPU', formatPct(w.cpuPct)),
        stat('Mem', formatPct(w.memPct)),
        ...gpus.map((g) => stat(`GPU${gpus.length > 1 ? g.index : ''}`, formatPct(g.utilPct))),
      ]),
    ],
  );
}

/** @param {string} label @param {string} value */
function stat(label, value) {
  return h('div', { class: 'stat' }, [h('dt', { text: label }), h('dd', { text: value })]);
}
