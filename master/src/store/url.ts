import { ConfigError } from '../../../common/errors.ts';
import { redactUrl } from '../../../common/redact.ts';
import type { QueueStoreKind } from './types.ts';

export { redactUrl };

/** The store a queue URL selects; undefined/empty → the embedded PostgreSQL. */
export function storeKindForUrl(url: string | undefined): QueueStoreKind {
  if (url === undefined || url.trim() === '') return 'embedded-postgres';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url.trim())?.[1]?.toLowerCase();
  switch (scheme) {
    case 'redis':
    case 'rediss':
      return 'redis';
    case 'postgres':
    case 'postgresql':
      return 'postgres';
    default:
      throw new ConfigError(
        `QUEUE_URL "${redactUrl(url)}" is not supported: use redis://, rediss://, postgres:// ` +
          'or postgresql://, or leave it unset for the embedded PostgreSQL',
      );
  }
}

/**
 * The one rule for a queue namespace (QUEUE_NAMESPACE, a Redis key prefix or
 * a PostgreSQL schema name). Lower-case, since PostgreSQL folds unquoted
 * names to lower case; the length is the limit QUEUE_NAMESPACE has always had.
 */
export const NAMESPACE_PATTERN = /^[a-z][a-z0-9_]{0,40}$/;
export const NAMESPACE_RULE =
  'lower-case letters, digits and _, starting with a letter, at most 41 characters';

/** Checks a namespace (Redis prefix / Postgres schema); returns it or throws ConfigError. */
export function validateNamespace(namespace: string): string {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new ConfigError(`queue namespace "${namespace}" is invalid: ${NAMESPACE_RULE}`);
  }
  return namespace;
}
