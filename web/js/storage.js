/**
 * Browser persistence. The session id and the visible chat history live in
 * localStorage so a reload keeps them; the API key lives in sessionStorage
 * only, so it disappears with the tab and is never written to disk.
 */

const SESSION_KEY = 'flota.sessionId';
const HISTORY_PREFIX = 'flota.history.';
const API_KEY = 'flota.apiKey';
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

export function loadApiKey() {
  return read(sessionStorage, API_KEY) ?? '';
}

/** @param {string} key */
export function saveApiKey(key) {
  write(sessionStorage, API_KEY, key ? key : null);
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
