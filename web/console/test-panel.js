/**
 * The Test panel: sends N copies of a prompt to a model through
 * `POST /api/tasks`, at most `concurrency` at a time, follows each to its
 * end, then shows the latencies (p50, p95, p99, max), failures and a
 * histogram. A run can be stopped; its outstanding tasks are cancelled.
 */
import { clear, h } from '../js/dom.js';
import { formatMs } from '../js/format.js';
import { button, errorText, field, select, setOptions } from './controls.js';
import { histogram, latencyStats, runLoad } from './test-run.js';

const MAX_TASKS = 500;
const MAX_CONCURRENCY = 64;
const BINS = 12;
/** Progress is redrawn at most this often (a fast fleet finishes hundreds a second). */
const PROGRESS_MS = 200;

/**
 * @param {HTMLElement} root
 * @param {import('./controls.js').ViewContext} ctx
 */
export function mountTestPanel(root, ctx) {
  const model = select([], { testid: 'test-model', required: true });
  const count = numberInput('20', 1, MAX_TASKS, 'test-count');
  const concurrency = numberInput('4', 1, MAX_CONCURRENCY, 'test-concurrency');
  const prompt = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { rows: '3', required: true, maxlength: '100000', testid: 'test-prompt' })
  );
  prompt.value = 'Say hello in one short sentence.';
  const useCache = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox' }));
  const run = /** @type {HTMLButtonElement} */ (
    h('button', {
      type: 'submit',
      class: 'cv-button cv-primary',
      text: 'Run',
      testid: 'test-run',
    })
  );
  const stop = button('Stop', () => controller?.abort(new Error('stopped')), {
    testid: 'test-stop',
    disabled: true,
  });
  const problem = h('p', { class: 'cv-error', role: 'alert', hidden: true });
  const bar = /** @type {HTMLProgressElement} */ (
    h('progress', { max: '1', value: '0', 'aria-label': 'Run progress' })
  );
  const progress = h('p', { class: 'cv-status', role: 'status', testid: 'test-progress' });
  const results = h('section', {
    class: 'cv-results',
    'aria-live': 'polite',
    testid: 'test-results',
    'aria-label': 'Results',
  });

  const form = h('form', { class: 'cv-test-form', 'aria-label': 'Load test' }, [
    h('div', { class: 'cv-row' }, [
      field('Model', model),
      field(`Tasks (1–${MAX_TASKS})`, count),
      field(`Concurrency (1–${MAX_CONCURRENCY})`, concurrency),
      h(
        'label',
        {
          class: 'cv-check',
          title: 'Identical prompts would otherwise be answered from the result cache',
        },
        [useCache, 'Allow cached answers'],
      ),
    ]),
    field('Prompt', prompt, 'cv-field-block'),
    h('div', { class: 'cv-actions' }, [run, stop]),
  ]);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void start();
  });

  root.append(
    h('div', { class: 'cv-view cv-test' }, [
      h('div', { class: 'cv-view-head' }, [h('h2', { text: 'Test the fleet' })]),
      h('p', {
        class: 'cv-muted cv-intro',
        text: 'Submits the prompt N times with at most the given number outstanding, follows each task to its end, and reports the latency from submission to result as the master measured it.',
      }),
      form,
      problem,
      h('div', { class: 'cv-progress' }, [bar, progress]),
      results,
    ]),
  );

  /** @type {AbortController | undefined} */
  let controller;

  async function start() {
    const n = clamp(count, 1, MAX_TASKS);
    const lanes = clamp(concurrency, 1, MAX_CONCURRENCY);
    const text = prompt.value.trim();
    if (!model.value || !text) {
      problem.hidden = false;
      problem.textContent = !text
        ? 'Write a prompt first.'
        : 'No model to test: no worker serves one.';
      return;
    }
    problem.hidden = true;
    controller = new AbortController();
    const signal = controller.signal;
    /** @type {Set<string>} */
    const outstanding = new Set();
    run.disabled = true;
    stop.disabled = false;
    clear(results);
    bar.max = n;
    bar.value = 0;
    const began = performance.now();
    /** @type {{ submitted: number, done: number, failed: number }} */
    let latest = { submitted: 0, done: 0, failed: 0 };
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let pending;
    const draw = () => {
      pending = undefined;
      bar.value = latest.done;
      progress.textContent = `${latest.done} of ${n} finished · ${latest.submitted - latest.done} running · ${latest.failed} failed`;
    };
    /** @param {{ submitted: number, done: number, failed: number }} p */
    const onProgress = (p) => {
      latest = p;
      pending ??= setTimeout(draw, PROGRESS_MS);
    };
    progress.textContent = `Starting ${n} tasks…`;
    const outcomes = await runLoad({
      api: ctx.api,
      task: { prompt: text, model: model.value, ...(useCache.checked ? {} : { cache: false }) },
      count: n,
      concurrency: lanes,
      signal,
      onProgress,
      onSubmitted: (id) => outstanding.add(id),
    });
    clearTimeout(pending);
    for (const o of outcomes) if (o.id) outstanding.delete(o.id);
    const seconds = (performance.now() - began) / 1000;
    if (signal.aborted) {
      // Stopped: what was started is cancelled, so the fleet is not left busy with it.
      await Promise.allSettled(
        [...outstanding].map((id) =>
          ctx.api.send('DELETE', `/api/tasks/${encodeURIComponent(id)}`),
        ),
      );
    }
    bar.value = outcomes.length;
    progress.textContent = signal.aborted
      ? `Stopped after ${outcomes.length} of ${n}; ${outstanding.size} outstanding tasks cancelled.`
      : `Done: ${outcomes.length} tasks in ${seconds.toFixed(1)} s.`;
    showResults(outcomes, seconds);
    run.disabled = false;
    stop.disabled = true;
    controller = undefined;
  }

  /** @param {import('./test-run.js').Outcome[]} outcomes @param {number} seconds */
  function showResults(outcomes, seconds) {
    const ok = outcomes.filter((o) => o.ok && typeof o.latencyMs === 'number');
    const latencies = ok.map((o) => /** @type {number} */ (o.latencyMs));
    const stats = latencyStats(latencies);
    const failures = outcomes.filter((o) => !o.ok);
    /** @type {Array<[string, string, string]>} */
    const figures = [
      ['p50', formatMs(stats.p50), 'stat-p50'],
      ['p95', formatMs(stats.p95), 'stat-p95'],
      ['p99', formatMs(stats.p99), 'stat-p99'],
      ['max', formatMs(stats.max), 'stat-max'],
      ['mean', formatMs(stats.mean), 'stat-mean'],
      ['completed', String(ok.length), 'stat-completed'],
      ['failed', String(failures.length), 'stat-failed'],
      [
        'throughput',
        seconds > 0 ? `${(outcomes.length / seconds).toFixed(1)}/s` : '—',
        'stat-rate',
      ],
    ];
    clear(results);
    results.append(
      h('h3', { text: 'Results' }),
      h(
        'dl',
        { class: 'cv-stats' },
        figures.map(([name, value, testid]) =>
          h('div', { class: `cv-stat ${name === 'failed' && failures.length ? 'is-bad' : ''}` }, [
            h('dt', { text: name }),
            h('dd', { text: value, testid }),
          ]),
        ),
      ),
      histogramView(latencies),
    );
    if (failures.length) {
      const reasons = new Map();
      for (const f of failures)
        reasons.set(f.error ?? 'failed', (reasons.get(f.error ?? 'failed') ?? 0) + 1);
      results.append(
        h('h4', { text: 'Failures' }),
        h(
          'ul',
          { class: 'cv-failures' },
          [...reasons].map(([reason, n]) => h('li', { text: `${n} × ${reason}` })),
        ),
      );
    }
  }

  return {
    async activate() {
      try {
        const { models } = await ctx.api.get('/api/models');
        setOptions(
          model,
          models.map(
            (/** @type {{ name: string }} */ m) =>
              /** @type {[string, string]} */ ([m.name, m.name]),
          ),
        );
      } catch (err) {
        setOptions(
          model,
          ctx.models().map((m) => /** @type {[string, string]} */ ([m, m])),
        );
        ctx.toast(`Could not list models: ${errorText(err)}`, 'error');
      }
      run.disabled = controller !== undefined || model.options.length === 0;
    },
  };
}

/** @param {number[]} latencies */
function histogramView(latencies) {
  const buckets = histogram(latencies, BINS);
  if (buckets.length === 0)
    return h('p', { class: 'cv-muted', text: 'No completed task to chart.' });
  const most = Math.max(...buckets.map((b) => b.count));
  const summary = buckets
    .filter((b) => b.count)
    .map((b) => `${b.count} between ${formatMs(b.from)} and ${formatMs(b.to)}`)
    .join('; ');
  return h('figure', { class: 'cv-histogram', testid: 'test-histogram' }, [
    h(
      'div',
      { class: 'cv-bars', role: 'img', 'aria-label': `Latency histogram: ${summary}` },
      buckets.map((b) => {
        const bar = h(
          'div',
          {
            class: 'cv-bar',
            title: `${formatMs(b.from)} – ${formatMs(b.to)}: ${b.count}`,
          },
          [h('span', { class: 'cv-bar-count', text: b.count ? String(b.count) : '' })],
        );
        bar.style.setProperty('--cv-share', String(b.count / most));
        return bar;
      }),
    ),
    h('figcaption', { class: 'cv-bars-axis' }, [
      h('span', { text: formatMs(buckets[0]?.from) }),
      h('span', { text: 'latency, submission → result' }),
      h('span', { text: formatMs(buckets[buckets.length - 1]?.to) }),
    ]),
  ]);
}

/** @param {string} value @param {number} min @param {number} max @param {string} testid */
function numberInput(value, min, max, testid) {
  const input = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'number',
      min: String(min),
      max: String(max),
      step: '1',
      required: true,
      testid,
    })
  );
  input.value = value;
  return input;
}

/** The input's whole number, held within its bounds (and written back). @param {HTMLInputElement} input @param {number} min @param {number} max */
function clamp(input, min, max) {
  const n = Math.min(max, Math.max(min, Math.round(Number(input.value) || min)));
  input.value = String(n);
  return n;
}
