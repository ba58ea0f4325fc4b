import type {
  IQueueBackend,
  JobProgress,
  Queue,
  QueueOptions,
  Worker,
  WorkerOptions,
} from 'bullmq';
import type { Logger } from '../../../common/logger.ts';
import type { AuditEntry, AuditPage, AuditQuery } from '../../../proto/src/schemas/audit.ts';
import type { TaskPage, TaskTimeline, UsageRow } from '../../../proto/src/schemas/console.ts';
import type { LimiterBackend } from '../http/rate-limit.ts';
import type { HistoryQuery, HistoryUpdate, UsageSelection } from './history-records.ts';

/** Which server keeps the queue state. */
export type QueueStoreKind = 'redis' | 'postgres' | 'embedded-postgres';

/** A BullMQ queue bound to a store; the same API whatever the backend. */
export type StoreQueue<D = unknown, R = unknown> = Queue<
  D,
  R,
  string,
  D,
  R,
  string,
  IQueueBackend,
  unknown
>;

/** A BullMQ worker without a processor: jobs are taken by hand (`getNextJob`). */
export type StoreWorker<D = unknown, R = unknown> = Worker<
  D,
  R,
  string,
  IQueueBackend,
  JobProgress,
  unknown
>;

/** Queue options minus what the store decides (connection, prefix/namespace). */
export type StoreQueueOptions = Omit<QueueOptions<unknown>, 'connection' | 'prefix'>;

/** Worker options minus what the store decides (connection, prefix/namespace). */
export type StoreWorkerOptions = Omit<WorkerOptions<unknown>, 'connection' | 'prefix'>;

/**
 * A connection of the store that the HTTP rate limiter may use for its
 * counters (they live with the queues, so several masters share them). The
 * store owns it: the limiter never closes it, and it is closed with the store.
 */
export type { LimiterBackend };

export interface OpenQueueStoreOptions {
  /**
   * `redis://` / `rediss://` → Redis; `postgres://` / `postgresql://` → an
   * existing PostgreSQL; undefined → an embedded PostgreSQL the store starts.
   */
  url?: string;
  /** Where the embedded PostgreSQL keeps its data (`${dataDir}/pg`) and password. */
  dataDir: string;
  /**
   * Keeps several flota installations apart on one server: the BullMQ key
   * prefix on Redis, the schema on PostgreSQL. Letters, digits and `_`,
   * starting with a letter or `_`, at most 63 characters. Default `flota`.
   */
  namespace?: string;
  log: Logger;
  /** How long open waits for a Redis / external PostgreSQL to answer. Default 60 000 ms. */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL only: the most connections the store holds in its one pool,
   * shared by every queue, worker, kv entry and ping (plus one LISTEN
   * connection if anything ever blocks waiting for a job). Default 10.
   */
  poolSize?: number;
}

/** Longest key StoreKv accepts. */
export const MAX_KV_KEY_CHARS = 512;

/**
 * A small key → JSON value map whose entries expire, kept in the queue's store
 * so it outlives the master: Redis keys under the store's prefix, or a table
 * in the store's PostgreSQL schema. Values go through JSON (plain data only).
 */
export interface StoreKv {
  /** The value, or undefined when absent or expired. Rejects while the server is unreachable. */
  get(key: string): Promise<unknown>;
  /** Stores `value` for `ttlMs` (an integer ≥ 1), replacing any earlier value of the key. */
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
}

/**
 * The audit trail, append-only, on the same server and namespace as the
 * queues (a Redis stream, or a PostgreSQL table no statement may change).
 */
export interface StoreAudit {
  /** Appends one record. Rejects while the server is unreachable. */
  append(entry: AuditEntry): Promise<void>;
  /** Records newest first, filtered; `nextCursor` continues where the page stopped. */
  page(query: AuditQuery): Promise<AuditPage>;
}

/**
 * The task history: a summary and a timeline per task, on the same server
 * and namespace as the queues. Several masters write it; updates merge
 * (history-records.ts), so an older fact never replaces a newer one.
 */
export interface StoreHistory {
  /** Merges the updates (at most one per task) in one round trip. Rejects while the server is unreachable. */
  write(updates: readonly HistoryUpdate[]): Promise<void>;
  /** Tasks newest first by submission, filtered; `nextCursor` goes on where the page stopped. */
  page(query: HistoryQuery): Promise<TaskPage>;
  /** A task's summary and events in order; undefined when the history does not hold it. */
  timeline(taskId: string): Promise<TaskTimeline | undefined>;
  /** Sums of the tasks finished in [from, to], per group. */
  usage(selection: UsageSelection): Promise<UsageRow[]>;
  /** Deletes the tasks submitted before `before` (Unix ms) and their events; resolves with how many. */
  trim(before: number): Promise<number>;
}

/**
 * Where the master keeps its queues. Everything created through the store is
 * closed by `close()`, so callers need not track their queues and workers.
 */
export interface QueueStore {
  readonly kind: QueueStoreKind;
  /** A BullMQ Queue on this store. An 'error' listener that logs is attached. */
  createQueue<D = unknown, R = unknown>(name: string, opts?: StoreQueueOptions): StoreQueue<D, R>;
  /**
   * A BullMQ Worker with no processor (manual processing): take jobs with
   * `worker.getNextJob(token, { block: false })`, finish them with
   * `job.moveToCompleted(value, token, false)` / `job.moveToFailed(err, token, false)`,
   * keep them with `job.extendLock(token, ms)`.
   */
  createWorker<D = unknown, R = unknown>(
    name: string,
    opts?: StoreWorkerOptions,
  ): StoreWorker<D, R>;
  /** Expiring key/value entries (e.g. the result cache), on the same server and namespace. */
  readonly kv: StoreKv;
  /** The audit trail, on the same server and namespace. */
  readonly audit: StoreAudit;
  /** The task history, on the same server and namespace. */
  readonly history: StoreHistory;
  /**
   * Names of the queues the store holds jobs for, starting with `prefix`
   * (a restarted master opens a lane for each, so no stored job is forgotten).
   */
  listQueues(prefix: string): Promise<string[]>;
  /** The store's own client/pool for the rate limiter's counters; closed by close(). */
  limiterBackend(): LimiterBackend;
  /** Cheap liveness check for /readyz: false (never throws) when the server is down. */
  ping(): Promise<boolean>;
  /** The store's URL with any password replaced by `***`, for logs and /readyz. */
  describe(): string;
  /**
   * Closes every queue and worker it created, then its connections, then stops
   * the embedded PostgreSQL. Idempotent: later calls return the same promise.
   */
  close(): Promise<void>;
}
