/**
 * Controls and formats the console's views share: labelled fields, a time
 * range picker, export buttons, times shown relative with the exact instant
 * on hover, and a refresh timer that only runs while its view is on screen.
 */
import { h } from '../js/dom.js';

/**
 * What the console's shell hands each view.
 * @typedef {object} ViewContext
 * @property {ReturnType<typeof import('./api.js').createApi>} api
 * @property {(event: string, fn: (payload: any) => void) => () => void} on
 * @property {(message: string, kind?: 'info' | 'error') => void} toast
 * @property {() => string[]} models the models the fleet serves now
 */

/**
 * A label around a control, the label's text above it.
 * @param {string} text @param {HTMLElement} control @param {string} [className]
 */
export function field(text, control, className) {
  return h('label', { class: `cv-field ${className ?? ''}`.trim() }, [
    h('span', { class: 'cv-field-label', text }),
    control,
  ]);
}

/**
 * @param {Array<[value: string, text: string]>} options
 * @param {Record<string, unknown>} [attrs]
 */
export function select(options, attrs = {}) {
  const node = /** @type {HTMLSelectElement} */ (h('select', attrs));
  setOptions(node, options);
  return node;
}

/**
 * Sets a select's options, keeping its value when it is still offered.
 * @param {HTMLSelectElement} node @param {Array<[value: string, text: string]>} options
 */
export function setOptions(node, options) {
  const same =
    node.options.length === options.length &&
    options.every(([v, text], i) => node.options[i]?.value === v && node.options[i]?.text === text);
  // Untouched when nothing changed, so an open list is not rebuilt under the pointer.
  if (same) return;
  const value = node.value;
  node.replaceChildren(...options.map(([v, text]) => h('option', { value: v, text })));
  if (options.some(([v]) => v === value)) node.value = value;
}

/** @param {string} text @param {() => void} onclick @param {Record<string, unknown>} [attrs] */
export function button(text, onclick, attrs = {}) {
  return /** @type {HTMLButtonElement} */ (
    h('button', { type: 'button', class: 'cv-button', text, onclick, ...attrs })
  );
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** @type {Record<string, { text: string, ms?: number }>} */
const RANGES = {
  any: { text: 'Any time' },
  '1h': { text: 'Last hour', ms: HOUR },
  '24h': { text: 'Last 24 h', ms: DAY },
  '7d': { text: 'Last 7 days', ms: 7 * DAY },
  custom: { text: 'Custom…' },
};

/**
 * A preset (last hour, 24 h, 7 days, maybe "any time") or a custom from/to,
 * in the browser's local time. `range()` is recomputed on each call, so "last
 * hour" moves with the clock.
 * @param {object} options
 * @param {string[]} options.presets keys of RANGES, in order
 * @param {string} options.initial
 * @param {() => void} options.onChange
 * @param {string} [options.label]
 */
export function createRangePicker({ presets, initial, onChange, label = 'Time' }) {
  const choice = select(
    presets.map((key) => [key, RANGES[key]?.text ?? key]),
    { testid: 'range-select' },
  );
  choice.value = initial;
  const from = /** @type {HTMLInputElement} */ (h('input', { type: 'datetime-local' }));
  const to = /** @type {HTMLInputElement} */ (h('input', { type: 'datetime-local' }));
  const custom = h('span', { class: 'cv-range-custom' }, [field('From', from), field('To', to)]);
  const sync = () => {
    custom.hidden = choice.value !== 'custom';
  };
  choice.addEventListener('change', () => {
    if (choice.value === 'custom' && !from.value) {
      from.value = toLocalInput(Date.now() - HOUR);
      to.value = toLocalInput(Date.now());
    }
    sync();
    onChange();
  });
  from.addEventListener('change', onChange);
  to.addEventListener('change', onChange);
  sync();
  return {
    element: h('span', { class: 'cv-range' }, [field(label, choice), custom]),
    /** @returns {{ from?: number, to?: number }} */
    range() {
      if (choice.value === 'custom') {
        const start = Date.parse(from.value);
        const end = Date.parse(to.value);
        return {
          from: Number.isFinite(start) ? start : undefined,
          // The input names a minute: "to" includes the whole of it.
          to: Number.isFinite(end) ? end + MINUTE - 1 : undefined,
        };
      }
      const ms = RANGES[choice.value]?.ms;
      return ms === undefined ? {} : { from: Date.now() - ms };
    },
  };
}

/** @param {number} ts a `datetime-local` value for `ts` in local time */
function toLocalInput(ts) {
  const d = new Date(ts - new Date(ts).getTimezoneOffset() * MINUTE);
  return d.toISOString().slice(0, 16);
}

/**
 * "Export <what>: CSV JSON" — each button downloads `path` with the query of
 * the moment and `format`, naming the file after `what` and the time.
 * @param {object} options
 * @param {ReturnType<typeof import('./api.js').createApi>} options.api
 * @param {string} options.what e.g. `tasks`
 * @param {string} options.path
 * @param {() => Record<string, string | number | undefined>} options.query
 * @param {(message: string, kind?: 'info' | 'error') => void} options.toast
 */
export function exportButtons({ api, what, path, query, toast }) {
  const run = async (/** @type {'csv' | 'json'} */ format) => {
    const stamp = new Date().toISOString().slice(0, 19).replaceAll(':', '-');
    try {
      await api.download(path, { ...query(), format }, `flota-${what}-${stamp}.${format}`);
    } catch (err) {
      toast(`Export of ${what} failed: ${errorText(err)}`, 'error');
    }
  };
  return h('div', { class: 'cv-export', role: 'group', 'aria-label': `Export ${what}` }, [
    h('span', { class: 'cv-field-label', text: `Export ${what}` }),
    button('CSV', () => void run('csv'), { testid: `export-${what}-csv` }),
    button('JSON', () => void run('json'), { testid: `export-${what}-json` }),
  ]);
}

/** @param {unknown} err */
export function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

/** @param {number} ts */
export function exactTime(ts) {
  return new Date(ts).toLocaleString([], {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** "just now", "5 s ago", "3 min ago", "2 h ago", "4 d ago". @param {number} ts @param {number} [now] */
export function relativeTime(ts, now = Date.now()) {
  const ago = Math.max(0, now - ts);
  if (ago < 2_000) return 'just now';
  if (ago < MINUTE) return `${Math.floor(ago / 1000)} s ago`;
  if (ago < HOUR) return `${Math.floor(ago / MINUTE)} min ago`;
  if (ago < DAY) return `${Math.floor(ago / HOUR)} h ago`;
  return `${Math.floor(ago / DAY)} d ago`;
}

/** A `<time>` showing how long ago, the exact instant on hover. @param {number} ts */
export function timeCell(ts) {
  return h('time', {
    datetime: new Date(ts).toISOString(),
    title: exactTime(ts),
    text: relativeTime(ts),
  });
}

const numbers = new Intl.NumberFormat();
/** @param {number | undefined} n */
export function formatCount(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numbers.format(n) : '—';
}

/** A task state as a coloured badge. @param {string} state */
export function stateBadge(state) {
  return h('span', { class: `cv-state cv-state-${state}`, text: state });
}

/**
 * Runs `tick` every `ms` while `view` is on screen and the tab is visible;
 * a tick still running is not started again.
 * @param {HTMLElement} view @param {number} ms @param {() => Promise<void> | void} tick
 */
export function refreshWhileVisible(view, ms, tick) {
  let busy = false;
  return setInterval(async () => {
    if (busy || document.visibilityState !== 'visible' || !isShown(view)) return;
    busy = true;
    try {
      await tick();
    } finally {
      busy = false;
    }
  }, ms);
}

/** @param {HTMLElement} view */
export function isShown(view) {
  return view.isConnected && view.checkVisibility();
}
