/** Argument checks every StoreKv binding shares, so all of them refuse the same input. */
import { MAX_KV_KEY_CHARS } from './types.ts';

export function checkKvKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KV_KEY_CHARS) {
    throw new RangeError(`kv key must be 1..${MAX_KV_KEY_CHARS} characters`);
  }
}

/** The value as JSON text, after checking the key and TTL. */
export function encodeKvEntry(key: string, value: unknown, ttlMs: number): string {
  checkKvKey(key);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`kv ttlMs must be a positive integer, got ${ttlMs}`);
  }
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError('kv value must be JSON-serialisable');
  return json;
}
