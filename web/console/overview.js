/**
 * The Overview tab: the fleet's headline numbers and its live charts
 * (uPlot): throughput, latency, queue depth per queue, errors and retries,
 * slot utilisation. The last hour comes with the snapshot; each new second
 * extends it. Longer ranges are read from `GET /api/series` (older points
 * come from Prometheus where the master has one) and refreshed every
 * RANGE_REFRESH_MS while shown. Charts are redrawn at most once a second and only while the
 * tab is shown, take their colours from the theme (rebuilt when it changes)
 * and follow their box's width.
 */
import uPlot from '/vendor/uPlot.esm.js';
import { h } from '../js/dom.js';
import { formatMs } from '../js/format.js';

/** @typedef {import('./main.js').ConsoleContext} ConsoleContext */
/** @typedef {{ at: number, completed: number, failed: number, retried: number, latencyP50Ms?: number, latencyP95Ms?: number, ttftP50Ms?: number, queued: Record<string, number>, slots: number, busy: number, workersOnline: number, seconds?: number }} SeriesPoint */
/** @typedef {{ label: string, color: string, values: Array<number | null> }} Line */

/** SERIES_SECONDS of proto/src/schemas/console.ts: an hour of points at most. */
const MAX_POINTS = 3600;
const REDRAW_MS = 1000;
const CHART_HEIGHT = 190;
/** Steps between time ticks, in seconds. */
const TIME_INCRS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400,
];
/** What the charts can show: the live hour, or a longer range read from the master. */
const RANGES = [
  { id: 'live', label: 'Last hour, live', ms: 0 },
  { id: '6h', label: 'Last 6 hours', ms: 6 * 3_600_000 },
  { id: '24h', label: 'Last 24 hours', ms: 24 * 3_600_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 24 * 3_600_000 },
];
const RANGE_REFRESH_MS = 30_000;
/** Queue lines get these colours in turn. */
const QUEUE_COLORS = ['--accent', '--accent-2', '--gpu', '--warn', '--ok', '--bad'];

/** Per second, whatever the point covers. @param {SeriesPoint} p @param {number} n */
const perSecond = (p, n) => n / (p.seconds ?? 1);
const maybe = (/** @type {unknown} */ v) =>
  typeof v === 'number' && Number.isFinite(v) ? v : null;

/**
 * Each chart: its title, how its values read, and its lines from the points.
 * @type {Array<{ id: string, title: string, unit: (v: number) => string, emptyMax?: number, lines: (points: SeriesPoint[], color: (name: string) => string) => Line[] }>}
 */
const CHARTS = [
  {
    id: 'throughput',
    title: 'Throughput',
    unit: (v) => `${round(v)}/s`,
    lines: (points, color) => [
      {
        label: 'completed/s',
        color: color('--ok'),
        values: points.map((p) => perSecond(p, p.completed)),
      },
    ],
  },
  {
    id: 'latency',
    title: 'Latency',
    unit: (v) => formatMs(v),
    // An empty chart still gets ticks that read apart (formatMs rounds to whole ms).
    emptyMax: 100,
    lines: (points, color) => [
      { label: 'p50', color: color('--accent'), values: points.map((p) => maybe(p.latencyP50Ms)) },
      { label: 'p95', color: color('--gpu'), values: points.map((p) => maybe(p.latencyP95Ms)) },
      {
        label: 'first token p50',
        color: color('--accent-2'),
        values: points.map((p) => maybe(p.ttftP50Ms)),
      },
    ],
  },
  {
    id: 'queues',
    title: 'Queue depth',
    unit: (v) => `${round(v)}`,
    lines: (points, color) => {
      const names = [...new Set(points.flatMap((p) => Object.keys(p.queued ?? {})))].sort();
      if (names.length === 0)
        return [{ label: 'queued', color: color('--accent'), values: points.map(() => 0) }];
      return names.map((name, i) => ({
        label: name,
        color: color(QUEUE_COLORS[i % QUEUE_COLORS.length] ?? '--accent'),
        values: points.map((p) => p.queued?.[name] ?? 0),
      }));
    },
  },
  {
    id: 'errors',
    title: 'Errors and retries',
    unit: (v) => `${round(v)}/s`,
    lines: (points, color) => [
      {
        label: 'failed/s',
        color: color('--bad'),
        values: points.map((p) => perSecond(p, p.failed)),
      },
      {
        label: 'retried/s',
        color: color('--warn'),
        values: points.map((p) => perSecond(p, p.retried)),
      },
    ],
  },
  {
    id: 'slots',
    title: 'Slot utilisation',
    unit: (v) => `${Math.round(v)}%`,
    lines: (points, color) => [
      {
        label: 'busy',
        color: color('--accent'),
        values: points.map((p) => (p.slots > 0 ? (100 * p.busy) / p.slots : 0)),
      },
    ],
  },
];

/** Two significant digits at most, so neighbouring ticks read apart (0.25, 0.5, 0.75). @param {number} v */
function round(v) {
  if (v === 0 || Math.abs(v) >= 10) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}

/** @param {HTMLElement} root @param {ConsoleContext} ctx */
export function mountOverview(root, ctx) {
  /** @type {SeriesPoint[]} */
  let points = [];
  let dirty = true;
  /** Drawn only while its tab is shown and the page is visible. */
  const visible = () => !root.hidden && document.visibilityState === 'visible';
  /** @type {Record<string, any> | undefined} */
  let alerts;
  /** @type {Record<string, any> | undefined} */
  let workers;
  let range = RANGES[0] ?? { id: 'live', label: '', ms: 0 };
  /** The points of a longer range, as the master last gave them. @type {SeriesPoint[]} */
  let archived = [];
  let rangeLoadedAt = 0;

  const stat = (/** @type {string} */ id, /** @type {string} */ label) => {
    const value = h('span', { class: 'stat-value', testid: `stat-${id}`, text: '—' });
    const note = h('span', { class: 'stat-note muted small' });
    const node = h('div', { class: `stat-card stat-${id}` }, [
      h('span', { class: 'stat-label', text: label }),
      value,
      note,
    ]);
    return { node, value, note };
  };
  const stats = {
    online: stat('online', 'Workers online'),
    queued: stat('queued', 'Queued'),
    running: stat('running', 'Running'),
    alerts: stat('alerts', 'Firing alerts'),
  };
  const charts = CHARTS.map((spec) => {
    const box = h('div', { class: 'chart-box', testid: `chart-${spec.id}` });
    const card = h('section', { class: 'card chart-card', 'aria-label': spec.title }, [
      h('h2', { class: 'chart-title', text: spec.title }),
      box,
    ]);
    return { spec, box, card, /** @type {any} */ plot: undefined, shape: '' };
  });
  const rangeNote = h('span', { class: 'muted small', testid: 'series-note', role: 'status' });
  const rangeSelect = h(
    'select',
    {
      id: 'series-range',
      testid: 'series-range',
      onchange: () => {
        range = RANGES.find((r) => r.id === rangeSelect.value) ?? range;
        archived = [];
        rangeNote.textContent = '';
        dirty = true;
        void loadRange();
      },
    },
    RANGES.map((r) => h('option', { value: r.id, text: r.label })),
  );
  root.append(
    h(
      'div',
      { class: 'stat-row' },
      Object.values(stats).map((s) => s.node),
    ),
    h('div', { class: 'chart-toolbar' }, [
      h('label', { for: 'series-range', class: 'small', text: 'Charts' }),
      rangeSelect,
      rangeNote,
    ]),
    h(
      'div',
      { class: 'chart-grid' },
      charts.map((c) => c.card),
    ),
  );

  /** Reads the chosen longer range; the live hour needs no request. */
  async function loadRange() {
    if (range.ms === 0) {
      if (visible()) draw();
      return;
    }
    const asked = range;
    rangeLoadedAt = Date.now();
    try {
      const res = await ctx.api.get('/api/series', { from: Date.now() - asked.ms });
      if (asked !== range) return;
      archived = Array.isArray(res.points) ? res.points : [];
      rangeNote.textContent = typeof res.gap === 'string' ? res.gap : `${archived.length} points`;
    } catch (err) {
      if (asked !== range) return;
      rangeNote.textContent = `Could not read the series: ${err instanceof Error ? err.message : String(err)}`;
    }
    dirty = true;
    if (visible()) draw();
  }

  function headline() {
    const latest = points.at(-1);
    const fleet = workers?.fleet;
    stats.online.value.textContent = String(fleet?.online ?? latest?.workersOnline ?? 0);
    stats.online.note.textContent = fleet ? `${fleet.offline ?? 0} offline` : '';
    const queued = latest ? Object.values(latest.queued ?? {}).reduce((a, b) => a + b, 0) : 0;
    stats.queued.value.textContent = String(queued);
    stats.queued.note.textContent = latest
      ? `${Object.keys(latest.queued ?? {}).length} queue(s)`
      : '';
    stats.running.value.textContent = String(latest?.busy ?? fleet?.active ?? 0);
    stats.running.note.textContent = `of ${latest?.slots ?? fleet?.slots ?? 0} slots`;
    const firing = Array.isArray(alerts?.firing) ? alerts.firing.length : 0;
    stats.alerts.value.textContent = String(firing);
    stats.alerts.node.classList.toggle('is-firing', firing > 0);
    stats.alerts.note.textContent = firing
      ? String(alerts?.firing?.[0]?.message ?? '')
      : 'all quiet';
  }

  /** @param {string} name a CSS custom property */
  const color = (name) =>
    getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

  function draw() {
    dirty = false;
    headline();
    const shown = range.ms === 0 ? points : archived;
    const xs = shown.map((p) => p.at / 1000);
    for (const chart of charts) {
      const lines = chart.spec.lines(shown, color);
      const shape = lines.map((l) => `${l.label}:${l.color}`).join('|');
      const data = [xs, ...lines.map((l) => l.values)];
      const width = chart.box.clientWidth;
      if (width === 0) continue;
      if (!chart.plot || chart.shape !== shape) {
        chart.plot?.destroy();
        chart.shape = shape;
        chart.plot = new uPlot(options(chart.spec, lines, width), data, chart.box);
      } else chart.plot.setData(data);
    }
  }

  /** @param {(typeof CHARTS)[number]} spec @param {Line[]} lines @param {number} width */
  function options(spec, lines, width) {
    const axis = {
      stroke: color('--muted'),
      grid: { stroke: color('--border'), width: 1 },
      ticks: { stroke: color('--border'), width: 1 },
      font: '11px system-ui, sans-serif',
    };
    return {
      width,
      height: CHART_HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: {
        y: {
          range: (/** @type {any} */ _u, /** @type {number} */ _min, /** @type {number} */ max) => [
            0,
            max > 0 ? max * 1.1 : (spec.emptyMax ?? 1),
          ],
        },
      },
      axes: [
        // Whole seconds at least: a wide chart of a few seconds would tick every half second.
        { ...axis, space: 60, incrs: TIME_INCRS },
        {
          ...axis,
          size: 56,
          values: (/** @type {any} */ _u, /** @type {number[]} */ ticks) => ticks.map(spec.unit),
        },
      ],
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          // One line gets a soft area under it; several would hide each other.
          fill: lines.length === 1 ? `${l.color}1f` : undefined,
          points: { show: false },
          value: (/** @type {any} */ _u, /** @type {number | null} */ v) =>
            v == null ? '—' : spec.unit(v),
        })),
      ],
    };
  }

  // Theme switches rebuild the charts with the new colours.
  const rebuild = () => {
    for (const chart of charts) chart.shape = '';
    dirty = true;
    if (visible()) draw();
  };
  new MutationObserver(rebuild).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ['data-theme'],
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', rebuild);
  const resize = new ResizeObserver(() => {
    for (const chart of charts) {
      const width = chart.box.clientWidth;
      if (chart.plot && width > 0 && width !== chart.plot.width) {
        chart.plot.setSize({ width, height: CHART_HEIGHT });
      }
    }
    if (visible() && charts.some((c) => !c.plot)) draw();
  });
  for (const chart of charts) resize.observe(chart.box);

  setInterval(() => {
    if (range.ms > 0 && visible() && Date.now() - rangeLoadedAt >= RANGE_REFRESH_MS) {
      void loadRange();
    }
    if (visible() && dirty) draw();
  }, REDRAW_MS);

  /** @param {SeriesPoint[]} more */
  function add(more) {
    const after = points.at(-1)?.at ?? Number.NEGATIVE_INFINITY;
    const fresh = more.filter((p) => p && typeof p.at === 'number' && p.at > after);
    if (fresh.length === 0) return;
    points = points.concat(fresh);
    if (points.length > MAX_POINTS) points = points.slice(-MAX_POINTS);
    dirty = true;
  }
  const onAny = /** @type {(event: string, fn: (payload: any) => void) => () => void} */ (ctx.on);
  onAny('points', (snapshot) => add(Array.isArray(snapshot) ? snapshot : []));
  ctx.on('point', (point) => add([point]));
  ctx.on('alerts', (payload) => {
    alerts = payload;
    dirty = true;
  });
  ctx.on('workers', (payload) => {
    workers = payload;
    dirty = true;
  });

  return {
    activate() {
      draw();
    },
  };
}
