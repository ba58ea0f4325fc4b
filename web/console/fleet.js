/**
 * The fleet's dispatch state: the emergency stop (with its confirm dialog:
 * keep or cancel the running tasks), the banner while dispatch is stopped,
 * and cordons by kind or label. Commands go to the REST API
 * (`/api/fleet/stop`, `/api/fleet/resume`, `/api/workers/drain`,
 * `/api/workers/resume`); the state shown is what the master pushes.
 */
import { h } from '../js/dom.js';
import { formatClock } from '../js/format.js';
import { askDialog } from './dialog.js';

/** @typedef {import('./main.js').ConsoleContext} ConsoleContext */

/**
 * What became of a command, as the console says it: acknowledged (`ok`),
 * refused by the worker or the master, or not acknowledged in time.
 * @param {unknown} err undefined when the call succeeded
 * @returns {{ result: 'ok' | 'refused' | 'timeout', text: string }}
 */
export function outcomeOf(err) {
  if (err === undefined) return { result: 'ok', text: 'ok' };
  const e = /** @type {{ code?: string, status?: number, message?: string }} */ (err);
  const reason = String(e?.message ?? 'failed');
  if (e?.code === 'not_acknowledged' || e?.status === 504) {
    return { result: 'timeout', text: `timeout: ${reason}` };
  }
  return { result: 'refused', text: `refused: ${reason}` };
}

/** @param {{ kind?: string, labels?: Record<string, string> }} selector */
export function describeSelector(selector) {
  return [
    selector.kind ? `kind=${selector.kind}` : '',
    ...Object.entries(selector.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ]
    .filter(Boolean)
    .join(', ');
}

/** @param {Record<string, any>} fleet */
function stoppedText(fleet) {
  const s = fleet.stopped ?? {};
  const by = s.by ? ` by ${s.by}` : '';
  const since = typeof s.at === 'number' ? ` since ${formatClock(s.at)}` : '';
  const running =
    s.running === 'cancel'
      ? `${Number(s.cancelled) || 0} running task${s.cancelled === 1 ? '' : 's'} cancelled`
      : 'running tasks keep running';
  return `Dispatch is stopped${since}${by}: queued tasks wait, ${running}.`;
}

/** @param {ConsoleContext} ctx */
async function resumeDispatch(ctx) {
  try {
    await ctx.api.send('POST', '/api/fleet/resume', {});
    ctx.toast('Dispatch resumed: queued tasks run again.');
  } catch (err) {
    ctx.toast(`Could not resume dispatch: ${outcomeOf(err).text}`, 'error');
  }
}

/** @param {ConsoleContext} ctx */
async function emergencyStop(ctx) {
  const values = await askDialog({
    title: 'Stop all dispatch?',
    testid: 'emergency-dialog',
    danger: true,
    confirm: 'Stop dispatch',
    body: [
      h('p', {
        text: 'No worker gets a new task until dispatch is resumed. Queued tasks stay queued.',
      }),
      h('fieldset', { class: 'dialog-choices' }, [
        h('legend', { class: 'field-label', text: 'Tasks running now' }),
        choice('running', 'keep', 'Keep running tasks', 'they finish on their workers', true),
        choice('running', 'cancel', 'Cancel running tasks', 'they end as cancelled now', false),
      ]),
    ],
  });
  if (!values) return;
  const running = values.get('running') === 'cancel' ? 'cancel' : 'keep';
  try {
    await ctx.api.send('POST', '/api/fleet/stop', { running });
    ctx.toast('Dispatch stopped.');
  } catch (err) {
    ctx.toast(`Emergency stop failed: ${outcomeOf(err).text}`, 'error');
  }
}

/** @param {string} name @param {string} value @param {string} label @param {string} hint @param {boolean} checked */
function choice(name, value, label, hint, checked) {
  return h('label', { class: 'choice' }, [
    h('input', { type: 'radio', name, value, checked, testid: `choice-${value}` }),
    h('span', {}, [h('strong', { text: label }), h('small', { text: hint })]),
  ]);
}

/**
 * The page-wide banner while dispatch is stopped, with its resume button.
 * @param {{ banner: HTMLElement, text: HTMLElement, resume: HTMLButtonElement, ctx: ConsoleContext }} deps
 */
export function createDispatchBanner({ banner, text, resume, ctx }) {
  resume.addEventListener('click', () => void resumeDispatch(ctx));
  ctx.on('fleet', (fleet) => {
    const stopped = fleet?.dispatch === 'stopped';
    banner.hidden = !stopped;
    if (stopped) text.textContent = stoppedText(fleet);
  });
}

/**
 * The Workers tab's fleet strip: dispatch state with the emergency stop,
 * and the cordons with a form for a new one.
 * @param {HTMLElement} root @param {ConsoleContext} ctx
 */
export function mountFleetControls(root, ctx) {
  const state = h('p', { class: 'fleet-state', testid: 'dispatch-state' });
  const stopButton = h('button', {
    type: 'button',
    class: 'solid-button danger',
    testid: 'emergency-stop',
    text: 'Emergency stop',
    onclick: () => void emergencyStop(ctx),
  });
  const resumeButton = h('button', {
    type: 'button',
    class: 'solid-button',
    testid: 'fleet-resume',
    text: 'Resume dispatch',
    onclick: () => void resumeDispatch(ctx),
  });

  const kind = /** @type {HTMLSelectElement} */ (
    h('select', { name: 'kind', 'aria-label': 'Kind', testid: 'cordon-kind' }, [
      h('option', { value: '', text: 'Any kind' }),
      h('option', { value: 'cpu', text: 'CPU' }),
      h('option', { value: 'gpu', text: 'GPU' }),
    ])
  );
  const label = /** @type {HTMLInputElement} */ (
    h('input', {
      name: 'label',
      placeholder: 'label=value',
      'aria-label': 'Label',
      spellcheck: 'false',
      testid: 'cordon-label',
    })
  );
  const cordonForm = h(
    'form',
    {
      class: 'cordon-form',
      onsubmit: (/** @type {Event} */ e) => {
        e.preventDefault();
        void cordon();
      },
    },
    [
      kind,
      label,
      h('button', { type: 'submit', class: 'ghost-button', testid: 'cordon', text: 'Cordon' }),
    ],
  );
  const cordonList = h('ul', { class: 'cordon-list', testid: 'cordon-list' });

  async function cordon() {
    /** @type {{ kind?: string, labels?: Record<string, string> }} */
    const selector = {};
    if (kind.value) selector.kind = kind.value;
    const text = label.value.trim();
    if (text) {
      const at = text.indexOf('=');
      if (at < 1) {
        ctx.toast('A label is written key=value.', 'error');
        return;
      }
      selector.labels = { [text.slice(0, at).trim()]: text.slice(at + 1).trim() };
    }
    if (!selector.kind && !selector.labels) {
      ctx.toast('Choose a kind or write a label to cordon.', 'error');
      return;
    }
    await selectorCommand('/api/workers/drain', selector, 'Cordoned');
    label.value = '';
  }

  /** @param {string} path @param {Record<string, unknown>} selector @param {string} done */
  async function selectorCommand(path, selector, done) {
    try {
      const reply = await ctx.api.send('POST', path, selector);
      const outcomes = Array.isArray(reply?.workers) ? reply.workers : [];
      const failed = outcomes.filter((/** @type {any} */ o) => !o.ok);
      const what = describeSelector(selector);
      ctx.toast(
        failed.length
          ? `${done} ${what}: ${outcomes.length - failed.length} ok, ${failed.length} refused or timed out`
          : `${done} ${what}: ${outcomes.length} worker${outcomes.length === 1 ? '' : 's'} acknowledged`,
        failed.length ? 'error' : 'info',
      );
    } catch (err) {
      ctx.toast(`${done} failed: ${outcomeOf(err).text}`, 'error');
    }
  }

  root.append(
    h('section', { class: 'card fleet-card', 'aria-labelledby': 'fleet-title' }, [
      h('div', { class: 'card-head' }, [
        h('h2', { id: 'fleet-title', text: 'Dispatch' }),
        h('div', { class: 'card-actions' }, [resumeButton, stopButton]),
      ]),
      state,
      h('h3', { class: 'subhead', text: 'Cordons' }),
      h('p', {
        class: 'muted small',
        text: 'Workers a cordon covers are drained now and whenever they join, until it is lifted.',
      }),
      cordonForm,
      cordonList,
    ]),
  );

  ctx.on('fleet', (fleet) => {
    if (!fleet) return;
    const stopped = fleet.dispatch === 'stopped';
    root.dataset.dispatch = stopped ? 'stopped' : 'running';
    state.textContent = stopped
      ? stoppedText(fleet)
      : `Dispatch is running. ${fleet.drained?.length ?? 0} worker(s) drained by an operator.`;
    state.classList.toggle('is-stopped', stopped);
    stopButton.hidden = stopped;
    resumeButton.hidden = !stopped;
    const cordons = Array.isArray(fleet.cordons) ? fleet.cordons : [];
    cordonList.replaceChildren(
      ...(cordons.length
        ? cordons.map((/** @type {any} */ c) =>
            h('li', { class: 'cordon', testid: 'cordon-item' }, [
              h('span', { class: 'chip', text: describeSelector(c.selector) }),
              h('span', {
                class: 'muted small',
                text: `since ${formatClock(c.at)}${c.by ? ` by ${c.by}` : ''}`,
              }),
              h('button', {
                type: 'button',
                class: 'ghost-button small',
                text: 'Lift',
                onclick: () => void selectorCommand('/api/workers/resume', c.selector, 'Lifted'),
              }),
            ]),
          )
        : [h('li', { class: 'muted small', text: 'No cordons.' })]),
    );
  });
}
