import { StartupError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from './embedded-postgres.ts';
import { createPostgresBinding } from './postgres-store.ts';
import { createRedisBinding } from './redis-store.ts';
import { createTrackedStore, type StoreBinding } from './tracked-store.ts';
import type { OpenQueueStoreOptions, QueueStore } from './types.ts';
import { redactUrl, storeKindForUrl, validateNamespace } from './url.ts';

const DEFAULT_NAMESPACE = 'flota';
/**
 * A store started alongside the master (a Swarm or Compose deploy starts all
 * services at once) may take a while to answer: the master waits this long,
 * saying so, rather than exiting and being restarted.
 */
const DEFAULT_CONNECT_TIMEOUT_MS = 60_000;
const RETRY_MS = 100;
/** While it waits, a line every this often says it still does. */
const WAITING_LOG_EVERY_MS = 10_000;

interface Waiting {
  log: Logger;
  fields: Record<string, unknown>;
}

async function untilReachable(
  binding: StoreBinding,
  timeoutMs: number,
  waiting: Waiting,
): Promise<boolean> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let nextLine = started;
  for (;;) {
    if (await binding.ping().catch(() => false)) {
      if (nextLine > started) {
        waiting.log.info(
          { ...waiting.fields, waitedMs: Date.now() - started },
          'queue store answered',
        );
      }
      return true;
    }
    const now = Date.now();
    if (now >= deadline) return false;
    if (now >= nextLine) {
      waiting.log.warn(
        { ...waiting.fields, waitedMs: now - started, timeoutMs },
        `waiting for the queue store to answer (at most ${Math.round(timeoutMs / 1000)} s)`,
      );
      nextLine = now + WAITING_LOG_EVERY_MS;
    }
    await new Promise<void>((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

interface Opened {
  binding: StoreBinding;
  description: string;
  server?: EmbeddedPostgresServer;
}

async function openBinding(
  options: OpenQueueStoreOptions,
  namespace: string,
  log: Logger,
): Promise<Opened> {
  const kind = storeKindForUrl(options.url);
  switch (kind) {
    case 'redis': {
      const url = options.url as string;
      const binding = createRedisBinding({ url, prefix: namespace, log });
      return { binding, description: redactUrl(url) };
    }
    case 'postgres': {
      const url = options.url as string;
      const binding = createPostgresBinding({
        connectionString: url,
        schema: namespace,
        poolSize: options.poolSize,
        log,
      });
      return { binding, description: redactUrl(url) };
    }
    case 'embedded-postgres': {
      const server = await startEmbeddedPostgres({ dataDir: options.dataDir, log });
      const binding = createPostgresBinding({
        connectionString: server.connectionString,
        schema: namespace,
        poolSize: options.poolSize,
        log,
      });
      return { binding, server, description: redactUrl(server.connectionString) };
    }
    default: {
      const unreachable: never = kind;
      throw new Error(`unknown queue store ${String(unreachable)}`);
    }
  }
}

/**
 * Opens the queue store a URL selects: Redis (`redis://`, `rediss://`), an
 * existing PostgreSQL (`postgres://`, `postgresql://`), or, without a URL, a
 * PostgreSQL the store starts itself in `${dataDir}/pg`. Resolves once the
 * server answers; throws ConfigError for an unsupported URL or namespace and
 * StartupError when the server does not answer within `connectTimeoutMs`.
 */
export async function openQueueStore(options: OpenQueueStoreOptions): Promise<QueueStore> {
  const kind = storeKindForUrl(options.url);
  const namespace = validateNamespace(options.namespace ?? DEFAULT_NAMESPACE);
  const log = options.log.child({ component: 'queue-store' });
  const { binding, description, server } = await openBinding(options, namespace, log);

  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const giveUp = async (why: string, cause?: unknown): Promise<never> => {
    await binding.closeConnections().catch(() => undefined);
    await server?.stop();
    throw new StartupError(
      'store_unreachable',
      `the ${kind} queue store at ${description} ${why}`,
      {
        hint: server
          ? `Start again with LOG_LEVEL=debug to see PostgreSQL's own output; moving ${options.dataDir}/pg aside starts with an empty queue.`
          : 'Start that server, or correct QUEUE_URL; without QUEUE_URL flota runs its own PostgreSQL in FLOTA_DATA_DIR.',
        cause,
      },
    );
  };
  const waiting = { log, fields: { store: kind, url: description } };
  if (!(await untilReachable(binding, timeoutMs, waiting))) {
    await giveUp(`did not answer within ${timeoutMs} ms`);
  }
  try {
    await binding.ready?.();
  } catch (err) {
    await giveUp(`could not be prepared: ${(err as Error).message}`, err);
  }
  log.info({ store: kind, url: description, namespace }, 'queue store open');
  return createTrackedStore({
    kind,
    description,
    binding,
    log,
    afterClose: server ? () => server.stop() : undefined,
  });
}
