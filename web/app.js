/**
 * Wires the chat UI: storage, the Socket.IO link, the chat store and views.
 * Loaded as a module after /socket.io/socket.io.js (which defines `io`).
 */
import { createChatStore } from './js/chat-store.js';
import { createChatView } from './js/chat-view.js';
import { createComposer } from './js/composer.js';
import { createConnection } from './js/connection.js';
import { buildContext, createContextHint } from './js/context.js';
import { $ } from './js/dom.js';
import { setupChrome } from './js/layout.js';
import { createReconciler } from './js/reconcile.js';
import {
  clearHistory,
  loadHistory,
  loadSessionId,
  newSessionId,
  saveHistory,
} from './js/storage.js';
import { createWorkersView } from './js/workers-view.js';

const STATE_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

const sessionId = loadSessionId();
const problem = $('#problem');

const chatView = createChatView({
  list: $('#messages'),
  scroller: $('#scroller'),
  empty: $('#welcome'),
});
const workersView = createWorkersView({
  list: $('#worker-list'),
  summary: $('#workers-summary'),
  count: $('#worker-count'),
});

let saveTimer = 0;
/**
 * Chunks can arrive many times a second, so history is written at most every
 * 250 ms (a timer, not requestAnimationFrame, which stops in background tabs).
 */
function persistSoon() {
  if (saveTimer) return;
  saveTimer = window.setTimeout(persistNow, 250);
}
function persistNow() {
  window.clearTimeout(saveTimer);
  saveTimer = 0;
  saveHistory(sessionId, store.messages);
}
window.addEventListener('pagehide', persistNow);
const contextHint = createContextHint($('#context-hint'));

const store = createChatStore({
  messages: loadHistory(sessionId),
  newId: newSessionId,
  now: () => Date.now(),
  onChange: (m) => {
    chatView.render(m);
    persistSoon();
    contextHint.update(store.messages);
  },
});
for (const m of store.messages) chatView.render(m);
contextHint.update(store.messages);
const reconciler = createReconciler({ store });

const composer = createComposer({
  form: /** @type {HTMLFormElement} */ ($('#composer')),
  input: /** @type {HTMLTextAreaElement} */ ($('#prompt')),
  send: /** @type {HTMLButtonElement} */ ($('#composer .send-button')),
  model: /** @type {HTMLSelectElement} */ ($('#model')),
  gpu: /** @type {HTMLInputElement} */ ($('#gpu')),
  apiKey: /** @type {HTMLInputElement} */ ($('#api-key')),
  onSend: async (draft) => {
    // Earlier turns only: taken before this exchange joins the chat.
    const history = buildContext(store.messages);
    const { assistant } = store.addExchange(draft.prompt, { model: draft.model, gpu: draft.gpu });
    /** @type {Record<string, unknown>} */
    const payload = {
      clientId: assistant.id,
      prompt: draft.prompt,
      requires: { gpu: draft.gpu },
    };
    if (history.length) payload.messages = history;
    if (draft.model) payload.model = draft.model;
    if (draft.apiKey) payload.apiKey = draft.apiKey;
    const reply = await link.submit(payload);
    if (reply.ok) store.bindTask(assistant.id, reply.taskId);
    else store.failLocal(assistant.id, reply.error);
  },
});

function showProblem(/** @type {string | null} */ text) {
  problem.hidden = !text;
  problem.textContent = text ?? '';
}

const status = $('[data-testid="connection-status"]');
const link = createConnection({
  io: /** @type {any} */ (window).io,
  sessionId,
  onState: (state) => {
    status.dataset.state = state;
    /** @type {HTMLElement} */ (status.querySelector('.conn-text')).textContent = STATE_TEXT[state];
    if (state === 'connected') showProblem(null);
  },
  onHello: ({ workers, models }) => {
    workersView.render(workers);
    composer.setModels(models);
    // Back in the session room: events from now on arrive; ask about those missed.
    reconciler.run();
  },
  onWorkers: ({ workers, models }) => {
    workersView.render(workers);
    composer.setModels(models);
  },
  onTaskEvent: (name, payload) => store.apply(name, payload),
  onProblem: showProblem,
});

setupChrome({
  onClear: () => {
    store.clear();
    clearHistory(sessionId);
    chatView.reset();
    contextHint.update(store.messages);
  },
  onSuggestion: (text) => composer.fill(text),
});
