import { readFileSync } from 'node:fs';

/** The flota version from the root package.json ('0.0.0' if it cannot be read). */
export function readVersion(): string {
  try {
    const raw = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(raw) as { version?: unknown }).version;
    return typeof version === 'string' ? version.slice(0, 64) : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
