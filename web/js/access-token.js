/**
 * The access token a master with API tokens asks for. It is kept for this
 * tab only (sessionStorage), sent in the Socket.IO handshake and as a Bearer
 * header on REST calls, and never logged or shown. A new value counts once
 * the field is left or Enter is pressed in it, not on every keystroke.
 */
import { loadToken, saveToken } from './storage.js';

/**
 * @param {{ input: HTMLInputElement, onChange: (token: string) => void }} deps
 */
export function createTokenField({ input, onChange }) {
  let current = loadToken();
  input.value = current;

  const commit = () => {
    const next = input.value.trim();
    const refused = input.getAttribute('aria-invalid') === 'true';
    // The same token again only counts as a new try after a refusal.
    if (next === current && !refused) return;
    current = next;
    saveToken(next);
    input.removeAttribute('aria-invalid');
    onChange(next);
  };
  input.addEventListener('change', commit);
  input.addEventListener('keydown', (e) => {
    // Enter inside the composer's form would otherwise send the prompt.
    if (e.key !== 'Enter' || e.isComposing) return;
    e.preventDefault();
    commit();
  });

  return {
    /** The token in use; '' when none. */
    get value() {
      return current;
    },
    /** The master refused the connection: point at the field. */
    ask() {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    },
    /** The master took the connection (with this token, or needs none). */
    accepted() {
      input.removeAttribute('aria-invalid');
    },
  };
}

/**
 * Headers for a REST call to the master: the Bearer header when a token is set.
 * @param {string} token @param {Record<string, string>} [headers]
 * @returns {Record<string, string>}
 */
export function withToken(token, headers = {}) {
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}
