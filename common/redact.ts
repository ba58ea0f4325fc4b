/**
 * What must never be shown as it is: passwords inside URLs (MQTT_URL,
 * QUEUE_URL, …) and identifiers that work as secrets (a browser session id
 * lets a page elsewhere join that session).
 */
import { createHash } from 'node:crypto';

/**
 * The URL with its password replaced by `***` (user name kept), safe for logs.
 * Text that is not a URL is returned with anything between `:` and `@` masked.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
  }
}

/**
 * `scheme://user:password@` anywhere in a text (a log line, an error message).
 * Quotes and spaces end a match, so a JSON line stays valid JSON.
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s:"'<>]*):([^/@\s"'<>]+)@/gi;

/** The text with the password of every URL in it replaced by `***`. */
export function redactUrlsIn(text: string): string {
  return text.includes('://') ? text.replace(URL_PASSWORD, '$1$2:***@') : text;
}

const HASHED_ID = /^#[0-9a-f]{10}$/;

/**
 * A short, stable stand-in for a secret identifier (`#` and 10 hex digits):
 * the same id always gives the same tag, so log lines can still be related,
 * but the tag does not give the id back. Already a tag → unchanged.
 */
export function hashId(id: string): string {
  if (HASHED_ID.test(id)) return id;
  return `#${createHash('sha256').update(id).digest('hex').slice(0, 10)}`;
}

/**
 * The URL without user name and password: for a URL handed to another
 * process that logs in with its own (a worker's MQTT login is its id and
 * credential, never the master's).
 */
export function urlWithoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}
