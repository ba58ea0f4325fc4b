/**
 * The part every store shares: remembers what it created so close() can shut
 * it down in order (workers, queues, connections, server), once.
 */
import type { Logger } from '../../../common/logger.ts';
import { settlesWithin } from '../../../common/timeout.ts';
import type {
  LimiterBackend,
  QueueStore,
  QueueStoreKind,
  StoreAudit,
  StoreHistory,
  StoreKv,
  StoreQueue,
  StoreQueueOptions,
  StoreWorker,
  StoreWorkerOptions,
} from './types.ts';

/** How one backend makes BullMQ objects and checks its server. */
export interface StoreBinding {
  /** Expiring entries on the same server; the binding closes what it needs in closeConnections(). */
  kv: StoreKv;
  /** The audit trail on the same server. */
  audit: StoreAudit;
  /** The task history on the same server. */
  history: StoreHistory;
  /** The connection the rate limiter may share (the binding's own; closed in closeConnections()). */
  limiter: LimiterBackend;
  /**
   * Work the server must have done before the first queue opens (e.g. schema
   * migrations), run once it answers ping(); rejects when it cannot be done.
   */
  ready?(): Promise<void>;
  newQueue(name: string, opts: StoreQueueOptions): StoreQueue;
  newWorker(name: string, opts: StoreWorkerOptions): StoreWorker;
  ping(): Promise<boolean>;
  /** Names of the queues the store holds jobs for, starting with `prefix`. */
  listQueues(prefix: string): Promise<string[]>;
  /** Closes the connections the binding opened itself (not those of queues/workers). */
  closeConnections(): Promise<void>;
}

export interface TrackedStoreOptions {
  kind: QueueStoreKind;
  description: string;
  binding: StoreBinding;
  log: Logger;
  /** Runs last in close(), e.g. stopping the embedded PostgreSQL. */
  afterClose?: () => Promise<void>;
}

/** One close step may take this long before close() moves on (a dead server can hang it). */
const CLOSE_STEP_TIMEOUT_MS = 5_000;

export function createTrackedStore(options: TrackedStoreOptions): QueueStore {
  const { binding, log } = options;
  const queues = new Set<StoreQueue>();
  const workers = new Set<StoreWorker>();
  let closing: Promise<void> | undefined;

  const closeAll = async (what: string, items: Iterable<{ close(): Promise<void> }>) => {
    const results = await Promise.all(
      [...items].map((item) => settlesWithin(item.close(), CLOSE_STEP_TIMEOUT_MS)),
    );
    const stuck = results.filter((ok) => !ok).length;
    if (stuck > 0) log.warn({ stuck, what }, 'some did not close in time; moving on');
  };

  const close = async () => {
    await closeAll('workers', workers);
    await closeAll('queues', queues);
    workers.clear();
    queues.clear();
    await binding.closeConnections().catch((err: unknown) => {
      log.warn({ err }, 'closing store connections failed');
    });
    await options.afterClose?.();
    log.info({ store: options.kind }, 'queue store closed');
  };

  // BullMQ/pg errors carry their client objects: log only what helps. While
  // closing, the server may drop connections that are still winding down.
  const reportError = (err: Error, queue: string, msg: string) => {
    const info = { message: err.message, code: (err as { code?: unknown }).code };
    if (closing) log.debug({ err: info, queue }, msg);
    else log.warn({ err: info, queue }, msg);
  };

  const assertOpen = (name: string) => {
    if (closing) throw new Error(`queue store is closed; cannot open "${name}"`);
  };

  return {
    kind: options.kind,
    kv: binding.kv,
    audit: binding.audit,
    history: binding.history,
    createQueue<D, R>(name: string, opts: StoreQueueOptions = {}): StoreQueue<D, R> {
      assertOpen(name);
      const queue = binding.newQueue(name, opts);
      queue.on('error', (err) => reportError(err, name, 'queue error'));
      queues.add(queue);
      return queue as unknown as StoreQueue<D, R>;
    },
    createWorker<D, R>(name: string, opts: StoreWorkerOptions = {}): StoreWorker<D, R> {
      assertOpen(name);
      const worker = binding.newWorker(name, opts);
      worker.on('error', (err) => reportError(err, name, 'queue worker error'));
      workers.add(worker);
      return worker as unknown as StoreWorker<D, R>;
    },
    limiterBackend: () => binding.limiter,
    ping: () => binding.ping().catch(() => false),
    listQueues: (prefix) => binding.listQueues(prefix),
    describe: () => options.description,
    close() {
      closing ??= close();
      return closing;
    },
  };
}
