import { randomBytes } from 'node:crypto';

/**
 * A unique name such as `jobs_k3f9x2ab01cd`. Letters, digits and `_` only, so
 * it is valid as a queue name, a Redis prefix, a Postgres schema (when the
 * prefix starts with a letter), an MQTT topic segment and a file name.
 */
export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}
