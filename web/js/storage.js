/**
 * Browser persistence. The session id, the visible chat history and the
 * outbox cursor (how far this browser has processed the session's task
 * events) live in localStorage so a reload keeps them; the cursor is written
 * together with the history it describes. The API key, the master's access
 * token and submissions still waiting for the master's ack live in
 * sessionStorage only, so they disappear with the tab and are never written
 * to disk.
 */

const SESSION_KEY = 'flota.sessionId';
const HISTORY_PREFIX = 'flota.history.';
const CURSOR_PREFIX = 'flota.outbox.';
const OUTGOING_PREFIX = 'flota.outgoing.';
const API_KEY = 'flota.apiKey';
const TOKEN_KEY = 'flota.token';
const THEME_KEY = 'flota.theme';
const SESSION_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
/** Oldest messages are dropped beyond this, to stay well inside the storage quota. */
const MAX_HISTORY = 200;

/** @param {Storage} store @param {string} key */
function read(store, key) {
  try {
    return store.getItem(key);
  } catch {
    return null;
  }
}

/** @param {Storage} store @param {string} key @param {string | null} value */
function write(store, key, value) {
  try {
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
    // Private mode or a full quota: the app keeps working, it just forgets on reload.
  }
}

export function newSessionId() {
  return crypto.randomUUID().replaceAll('-', '');
}

/** The session id, created once and kept across reloads. */
export function loadSessionId() {
  const existing = read(localStorage, SESSION_KEY);
  if (existing && SESSION_PATTERN.test(existing)) return existing;
  const id = newSessionId();
  write(localStorage, SESSION_KEY, id);
  return id;
}

/** @param {string} sessionId */
export function saveSessionId(sessionId) {
  write(localStorage, SESSION_KEY, sessionId);
}

/** @param {string} sessionId @returns {Array<Record<string, unknown>>} */
export function loadHistory(sessionId) {
  const raw = read(localStorage, HISTORY_PREFIX + sessionId);
  if (!raw) return [];
  try {
    const parsed = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((m) => m && typeof m === 'object') : [];
  } catch {
    return [];
  }
}

/** @param {string} sessionId @param {Array<Record<string, unknown>>} messages */
export function saveHistory(sessionId, messages) {
  const kept = messages.slice(-MAX_HISTORY);
  write(localStorage, HISTORY_PREFIX + sessionId, JSON.stringify(kept));
}

/** @param {string} sessionId */
export function clearHistory(sessionId) {
  write(localStorage, HISTORY_PREFIX + sessionId, null);
}

/**
 * The outbox position last saved with the history: the master's epoch and the
 * last `outboxSeq` whose effect the saved history holds.
 * @param {string} sessionId @returns {{ epoch: string, lastSeq: number } | null}
 */
export function loadCursor(sessionId) {
  const parsed = parse(read(localStorage, CURSOR_PREFIX + sessionId));
  if (!parsed || typeof parsed.epoch !== 'string' || !parsed.epoch) return null;
  const { lastSeq } = parsed;
  if (!Number.isInteger(lastSeq) || lastSeq < 0) return null;
  return { epoch: parsed.epoch.slice(0, 64), lastSeq };
}

/** @param {string} sessionId @param {{ epoch: string, lastSeq: number } | null} cursor */
export function saveCursor(sessionId, cursor) {
  write(localStorage, CURSOR_PREFIX + sessionId, cursor ? JSON.stringify(cursor) : null);
}

/**
 * Submissions whose ack has not come yet, by client id, so a reload of this
 * tab sends them again (the master keeps a submission idempotent per client
 * id). They may hold the API key, hence sessionStorage.
 * @param {string} sessionId @returns {Array<[string, { payload: Record<string, unknown>, since: number }]>}
 */
export function loadOutgoing(sessionId) {
  const parsed = parse(read(sessionStorage, OUTGOING_PREFIX + sessionId));
  if (!parsed || !Array.isArray(parsed.entries)) return [];
  return parsed.entries.filter(
    (/** @type {any} */ e) =>
      Array.isArray(e) &&
      typeof e[0] === 'string' &&
      e[1]?.payload &&
      typeof e[1].payload === 'object' &&
      typeof e[1].since === 'number',
  );
}

/** @param {string} sessionId @param {Array<[string, unknown]>} entries */
export function saveOutgoing(sessionId, entries) {
  const key = OUTGOING_PREFIX + sessionId;
  write(sessionStorage, key, entries.length ? JSON.stringify({ entries }) : null);
}

/** @param {string | null} raw @returns {Record<string, any> | null} */
function parse(raw) {
  if (!raw) return null;
  try {
    const value = JSON.parse(raw);
    return value && typeof value === 'object' ? value : null;
  } catch {
    return null;
  }
}

export function loadApiKey() {
  return read(sessionStorage, API_KEY) ?? '';
}

/** @param {string} key */
export function saveApiKey(key) {
  write(sessionStorage, API_KEY, key ? key : null);
}

/** The token the master asks for when it has API tokens configured; '' when none. */
export function loadToken() {
  return read(sessionStorage, TOKEN_KEY) ?? '';
}

/** @param {string} token */
export function saveToken(token) {
  write(sessionStorage, TOKEN_KEY, token ? token : null);
}

/** @returns {'light' | 'dark' | null} */
export function loadTheme() {
  const theme = read(localStorage, THEME_KEY);
  return theme === 'light' || theme === 'dark' ? theme : null;
}

/** @param {'light' | 'dark'} theme */
export function saveTheme(theme) {
  write(localStorage, THEME_KEY, theme);
}
