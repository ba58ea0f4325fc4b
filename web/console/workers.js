/**
 * The Workers tab: the fleet strip (fleet.js), then a row per worker the
 * master lists (at most 200, online first) with its health, load, models,
 * counts and last heartbeat, and its commands: drain or resume, stop,
 * restart, edit its live config. Each command shows the worker's answer
 * in its row: ok, refused (with the reason) or timeout. Rows are kept by
 * worker id and updated in place, so a focused button stays focused while
 * the list is pushed again.
 */
import { h } from '../js/dom.js';
import { formatPct } from '../js/format.js';
import { askDialog, field } from './dialog.js';
import { mountFleetControls, outcomeOf } from './fleet.js';

/** @typedef {import('./main.js').ConsoleContext} ConsoleContext */

/** Green, yellow or red, always with its words: the colour is never the only sign. */
const HEALTH = {
  online: 'Online',
  draining: 'Draining',
  degraded: 'Late heartbeats',
  offline: 'Offline',
};
const COLUMNS = [
  'Status',
  'Worker',
  'Kind',
  'CPU',
  'Memory',
  'GPU',
  'Models',
  'Slots',
  'Done',
  'Errors',
  'Heartbeat',
  'Version',
  'Actions',
];

/** @param {number} ms */
export function relativeTime(ms) {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.round(m / 60)} h ago`;
}

/** @param {HTMLElement} root @param {ConsoleContext} ctx */
export function mountWorkers(root, ctx) {
  const fleetStrip = h('div', { class: 'fleet-strip' });
  mountFleetControls(fleetStrip, ctx);
  const summary = h('p', { class: 'muted small', testid: 'workers-summary' });
  const body = h('tbody', { testid: 'worker-rows' });
  const table = h('table', { class: 'worker-table', testid: 'worker-table' }, [
    h('thead', {}, [
      h(
        'tr',
        {},
        COLUMNS.map((c) => h('th', { scope: 'col', text: c })),
      ),
    ]),
    body,
  ]);
  const empty = h('div', { class: 'empty-state', hidden: true }, [
    h('h2', { text: 'No workers yet' }),
    h('p', { text: 'Workers appear here as soon as they connect to the master.' }),
  ]);
  root.append(
    fleetStrip,
    h('section', { class: 'card', 'aria-labelledby': 'workers-title' }, [
      h('div', { class: 'card-head' }, [
        h('h2', { id: 'workers-title', text: 'Workers' }),
        summary,
      ]),
      h('div', { class: 'table-wrap' }, [table]),
      empty,
    ]),
  );

  /** @type {Map<string, ReturnType<typeof workerRow>>} */
  const rows = new Map();
  /** @type {Record<string, any> | undefined} */
  let last;

  /** @param {Record<string, any>} payload */
  function render(payload) {
    last = payload;
    // Hidden, the table waits: activate() draws the latest.
    if (root.hidden) return;
    const workers = Array.isArray(payload.workers) ? payload.workers : [];
    const at = typeof payload.at === 'number' ? payload.at : Date.now();
    const seen = new Set();
    /** @type {HTMLElement[]} */
    const ordered = [];
    for (const w of workers) {
      if (!w || typeof w.id !== 'string') continue;
      seen.add(w.id);
      let row = rows.get(w.id);
      if (!row) {
        row = workerRow(w.id, ctx);
        rows.set(w.id, row);
      }
      row.update(w, at);
      ordered.push(row.el);
    }
    for (const [id, row] of rows) {
      if (seen.has(id)) continue;
      row.el.remove();
      rows.delete(id);
    }
    // Moves only what is out of place, so focus and hover survive a push.
    ordered.forEach((el, i) => {
      if (body.children[i] !== el) body.insertBefore(el, body.children[i] ?? null);
    });
    const fleet = payload.fleet ?? {};
    const total = Number(fleet.online ?? 0) + Number(fleet.offline ?? 0);
    summary.textContent = `${fleet.online ?? 0} online · ${fleet.offline ?? 0} offline · ${fleet.active ?? 0}/${fleet.slots ?? 0} slots busy${total > workers.length ? ` · first ${workers.length} listed` : ''}`;
    empty.hidden = workers.length > 0;
    table.hidden = workers.length === 0;
  }

  ctx.on('workers', render);
  return {
    activate() {
      if (last) render(last);
    },
  };
}

/** @param {string} id @param {ConsoleContext} ctx */
function workerRow(id, ctx) {
  const cell = (/** @type {string} */ label, /** @type {Record<string, unknown>} */ attrs = {}) =>
    h('td', { 'data-label': label, ...attrs });
  const healthText = h('span', { class: 'health-text', testid: 'worker-health' });
  const status = cell('Status', { class: 'col-status' });
  status.append(
    h('span', { class: 'health' }, [
      h('span', { class: 'health-dot', 'aria-hidden': 'true' }),
      healthText,
    ]),
  );
  const name = cell('Worker', { class: 'col-id' });
  const idText = h('span', { class: 'mono', text: id, testid: 'worker-id' });
  const host = h('span', { class: 'muted small' });
  name.append(idText, host);
  const kind = cell('Kind');
  const cpu = cell('CPU', { class: 'num' });
  const mem = cell('Memory', { class: 'num' });
  const gpu = cell('GPU', { class: 'num' });
  const models = cell('Models', { class: 'col-models' });
  const slots = cell('Slots', { class: 'num', testid: 'worker-slots' });
  const done = cell('Done', { class: 'num', testid: 'worker-done' });
  const errors = cell('Errors', { class: 'num' });
  const beat = cell('Heartbeat', { class: 'small' });
  const version = cell('Version', { class: 'mono small' });
  const outcome = h('span', { class: 'outcome', testid: 'worker-outcome', role: 'status' });

  /** @type {Record<string, any>} */
  let worker = { id };
  const button = (/** @type {string} */ label, /** @type {() => void} */ onclick) =>
    h('button', {
      type: 'button',
      class: 'ghost-button small',
      testid: `worker-${label.toLowerCase()}`,
      text: label,
      onclick,
    });
  const drain = button('Drain', () => void command('drain'));
  const resume = button('Resume', () => void command('resume'));
  const stop = button('Stop', () => void confirmThen('stop'));
  const restart = button('Restart', () => void confirmThen('restart'));
  const config = button('Config', () => void editConfig());
  const actions = cell('Actions', { class: 'col-actions' });
  actions.append(
    h('div', { class: 'row-actions' }, [drain, resume, stop, restart, config]),
    outcome,
  );

  const el = h('tr', { class: 'worker-row', testid: 'worker-row', 'data-worker-id': id }, [
    status,
    name,
    kind,
    cpu,
    mem,
    gpu,
    models,
    slots,
    done,
    errors,
    beat,
    version,
    actions,
  ]);

  /** @param {string} text @param {'ok' | 'refused' | 'timeout' | 'pending'} result */
  function show(text, result) {
    outcome.textContent = text;
    outcome.dataset.result = result;
  }

  /** @param {'drain' | 'resume' | 'stop' | 'restart'} name */
  async function command(name) {
    show(`${name}…`, 'pending');
    try {
      await ctx.api.send('POST', `/api/workers/${encodeURIComponent(id)}/${name}`, {});
      show(`${name}: ok`, 'ok');
    } catch (err) {
      const o = outcomeOf(err);
      show(`${name}: ${o.text}`, o.result);
    }
  }

  /** @param {'stop' | 'restart'} name */
  async function confirmThen(name) {
    const ok = await askDialog({
      title: name === 'stop' ? `Stop ${id}?` : `Restart ${id}?`,
      danger: true,
      confirm: name === 'stop' ? 'Stop worker' : 'Restart worker',
      body: [
        h('p', {
          text:
            name === 'stop'
              ? 'It takes no new work, finishes what it runs, then leaves the fleet.'
              : 'It takes no new work, finishes what it runs, then exits for its supervisor to start it again.',
        }),
      ],
    });
    if (ok) await command(name);
  }

  async function editConfig() {
    const labels = Object.entries(worker.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    const models = (worker.models ?? []).join(', ');
    const values = await askDialog({
      title: `Configure ${id}`,
      confirm: 'Apply',
      testid: 'config-dialog',
      body: [
        field('Slots', {
          name: 'slots',
          type: 'number',
          min: '1',
          max: '1024',
          value: worker.slots,
        }),
        field('Models', { name: 'models', value: models, spellcheck: 'false' }, 'comma separated'),
        field('Weight', {
          name: 'weight',
          type: 'number',
          min: '1',
          max: '1000',
          value: worker.weight ?? 1,
        }),
        field(
          'Labels',
          { name: 'labels', value: labels, spellcheck: 'false' },
          'key=value, comma separated',
        ),
      ],
    });
    if (!values) return;
    /** @type {Record<string, unknown>} */
    const change = {};
    const slots = Number(values.get('slots'));
    if (Number.isInteger(slots) && slots !== worker.slots) change.slots = slots;
    const weight = Number(values.get('weight'));
    if (Number.isInteger(weight) && weight !== (worker.weight ?? 1)) change.weight = weight;
    const nextModels = String(values.get('models') ?? '');
    if (nextModels.trim() !== models) change.models = list(nextModels);
    const nextLabels = String(values.get('labels') ?? '');
    if (nextLabels.trim() !== labels) {
      /** @type {Record<string, string>} */
      const parsed = {};
      for (const pair of list(nextLabels)) {
        const at = pair.indexOf('=');
        if (at < 1) {
          show(`config: "${pair}" is not key=value`, 'refused');
          return;
        }
        parsed[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
      }
      change.labels = parsed;
    }
    if (Object.keys(change).length === 0) {
      show('config: nothing changed', 'ok');
      return;
    }
    show('config…', 'pending');
    try {
      await ctx.api.send('PATCH', `/api/workers/${encodeURIComponent(id)}/config`, change);
      show('config: ok', 'ok');
    } catch (err) {
      const o = outcomeOf(err);
      show(`config: ${o.text}`, o.result);
    }
  }

  /** @param {Record<string, any>} w @param {number} at */
  function update(w, at) {
    worker = w;
    const health = w.health in HEALTH ? w.health : 'offline';
    el.dataset.health = health;
    el.dataset.state = w.state;
    healthText.textContent = HEALTH[/** @type {keyof typeof HEALTH} */ (health)];
    host.textContent = w.host ?? '';
    kind.replaceChildren(
      h('span', {
        class: `badge badge-${w.kind === 'gpu' ? 'gpu' : 'cpu'}`,
        text: String(w.kind).toUpperCase(),
      }),
    );
    cpu.textContent = formatPct(w.cpuPct);
    mem.textContent = formatPct(w.memPct);
    const gpus = Array.isArray(w.gpus) ? w.gpus : [];
    gpu.textContent = gpus.length ? gpus.map((g) => formatPct(g.utilPct)).join(' · ') : '—';
    const loaded = new Set(Array.isArray(w.loaded) ? w.loaded : []);
    models.replaceChildren(
      ...(Array.isArray(w.models) ? w.models : []).map((m) =>
        h('span', {
          class: `chip${loaded.has(m) ? ' chip-loaded' : ''}`,
          text: loaded.has(m) ? `${m} · loaded` : String(m),
          title: loaded.has(m) ? 'held in memory now' : undefined,
        }),
      ),
    );
    slots.textContent = `${w.active ?? 0}/${w.slots ?? 0}`;
    done.textContent = String(w.done ?? 0);
    errors.textContent = String(w.failed ?? 0);
    errors.classList.toggle('has-errors', Number(w.failed) > 0);
    beat.textContent =
      w.state === 'online'
        ? relativeTime(at - w.lastSeen)
        : `last ${relativeTime(at - w.lastSeen)}`;
    version.textContent = w.version ?? '';
    const online = w.state === 'online';
    drain.hidden = !online || w.draining === true;
    resume.hidden = !online || w.draining !== true;
    for (const b of [stop, restart, config]) b.toggleAttribute('disabled', !online);
  }

  return { el, update };
}

/** @param {string} text */
function list(text) {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
