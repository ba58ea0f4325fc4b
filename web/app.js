/**
 * Wires the chat UI: storage, the Socket.IO link, the outbox cursor, the chat
 * store and views. Loaded as a module after /socket.io/socket.io.js (which
 * defines `io`).
 */
import { createTokenField } from './js/access-token.js';
import { createChatStore } from './js/chat-store.js';
import { createChatView } from './js/chat-view.js';
import { createComposer } from './js/composer.js';
import { createConnection } from './js/connection.js';
import { buildContext, createContextHint } from './js/context.js';
import { $ } from './js/dom.js';
import { setupChrome } from './js/layout.js';
import { createOutboxCursor, createThrottle } from './js/outbox.js';
import {
  clearHistory,
  loadCursor,
  loadHistory,
  loadOutgoing,
  loadSessionId,
  newSessionId,
  saveCursor,
  saveHistory,
  saveOutgoing,
} from './js/storage.js';
import { createSubmitter } from './js/submitter.js';
import { createUnknownTaskProbe } from './js/unknown-probe.js';
import { createWorkersView } from './js/workers-view.js';

const STATE_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  unauthorized: 'Access token needed',
};
const TOKEN_PROBLEM = 'The master needs an access token: enter it in the Access token field.';

const sessionId = loadSessionId();
const problem = $('#problem');

const chatView = createChatView({
  list: $('#messages'),
  scroller: $('#scroller'),
  empty: $('#welcome'),
  onCancel: (messageId) => void cancel(messageId),
  onReprioritize: (messageId, priority) => void reprioritize(messageId, priority),
});
const workersView = createWorkersView({
  list: $('#worker-list'),
  summary: $('#workers-summary'),
  count: $('#worker-count'),
});
const contextHint = createContextHint($('#context-hint'));
const cursor = createOutboxCursor(loadCursor(sessionId));

/**
 * Saves the history together with the outbox position it reflects, then acks
 * that position, so the master never drops an event this browser has not
 * saved. Chunks can arrive many times a second: at most every 250 ms.
 */
const sync = createThrottle(() => {
  saveHistory(sessionId, store.messages);
  saveCursor(sessionId, cursor.snapshot());
  link.ack(cursor.lastSeq);
}, 250);
window.addEventListener('pagehide', () => sync.flush());

/** Submissions of this tab still waiting for their ack when it was last closed. */
const outgoing = loadOutgoing(sessionId);
const store = createChatStore({
  messages: loadHistory(sessionId),
  newId: newSessionId,
  now: () => Date.now(),
  sending: (clientId) => outgoing.some(([id]) => id === clientId),
  onChange: (m) => {
    chatView.render(m);
    sync.schedule();
    contextHint.update(store.messages);
  },
});
for (const m of store.messages) chatView.render(m);
contextHint.update(store.messages);
const token = createTokenField({
  input: /** @type {HTMLInputElement} */ ($('#token')),
  onChange: (value) => link.setToken(value),
});
const probe = createUnknownTaskProbe({ failUnknown: store.failUnknown, token: () => token.value });

const composer = createComposer({
  form: /** @type {HTMLFormElement} */ ($('#composer')),
  input: /** @type {HTMLTextAreaElement} */ ($('#prompt')),
  send: /** @type {HTMLButtonElement} */ ($('#composer .send-button')),
  model: /** @type {HTMLSelectElement} */ ($('#model')),
  gpu: /** @type {HTMLInputElement} */ ($('#gpu')),
  apiKey: /** @type {HTMLInputElement} */ ($('#api-key')),
  priority: /** @type {HTMLSelectElement} */ ($('#priority')),
  noCache: /** @type {HTMLInputElement} */ ($('#no-cache')),
  onSend: (draft) => {
    // Earlier turns only: taken before this exchange joins the chat.
    const history = buildContext(store.messages);
    const { model, gpu, priority } = draft;
    const { assistant } = store.addExchange(draft.prompt, { model, gpu, priority });
    /** @type {Record<string, unknown>} */
    const payload = {
      prompt: draft.prompt,
      requires: { gpu: draft.gpu },
      priority,
    };
    if (history.length) payload.messages = history;
    if (draft.model) payload.model = draft.model;
    if (draft.apiKey) payload.apiKey = draft.apiKey;
    if (draft.noCache) payload.cache = false;
    submitter.submit(assistant.id, payload);
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
  cursor,
  // Unfinished tasks: a master that cannot replay (it restarted) sends their state instead.
  pending: () => store.openTaskIds(),
  token: token.value,
  onState: (state, refusal) => {
    status.dataset.state = state;
    const text = state === 'unauthorized' && refusal ? refusal : STATE_TEXT[state];
    /** @type {HTMLElement} */ (status.querySelector('.conn-text')).textContent = text;
    status.title = state === 'unauthorized' ? text : 'Connection to the master';
    if (state === 'connected') {
      showProblem(null);
      token.accepted();
    } else if (state === 'unauthorized') {
      showProblem(TOKEN_PROBLEM);
      token.ask();
    }
  },
  onHello: ({ workers, models, fleet }) => {
    workersView.render(workers, fleet);
    composer.setModels(models, fleet);
    // The epoch may be new (lastSeq back to 0): save the cursor soon.
    sync.schedule();
    probe.run(store.openTaskIds());
  },
  onWorkers: ({ workers, models, fleet }) => {
    workersView.render(workers, fleet);
    composer.setModels(models, fleet);
  },
  onTaskEvent: (name, payload) => {
    store.apply(name, payload);
    // Processed even when it changed no bubble: the cursor moved, so save and ack.
    sync.schedule();
  },
  onProblem: showProblem,
});

const submitter = createSubmitter({
  link,
  store,
  saved: outgoing,
  save: (entries) => saveOutgoing(sessionId, entries),
  now: () => Date.now(),
});
// Submissions a reload interrupted go again, with the same client id.
submitter.resume((clientId) => store.awaitsAck(clientId));

/** @param {string} messageId */
async function cancel(messageId) {
  const taskId = store.requestCancel(messageId);
  if (!taskId) return;
  const reply = await link.cancel(taskId);
  // On success the outcome arrives as a task event (task:failed, state cancelled).
  if (!reply.ok) store.cancelRefused(messageId, reply.error);
}

/** @param {string} messageId @param {number} priority */
async function reprioritize(messageId, priority) {
  const taskId = store.requestReprioritize(messageId, priority);
  if (!taskId) return;
  store.reprioritized(messageId, await link.reprioritize(taskId, priority));
}

setupChrome({
  onClear: () => {
    submitter.clear();
    store.clear();
    clearHistory(sessionId);
    chatView.reset();
    contextHint.update(store.messages);
  },
  onSuggestion: (text) => composer.fill(text),
});
