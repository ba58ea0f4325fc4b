/**
 * The local models a worker holds in memory. A model is loaded by the first
 * task that asks for it and shared by the tasks that follow; it stays while
 * used and is unloaded once idle for `idleMs`. All of them fit in `budgetMb`:
 * to load another, the least recently used idle models go first, and when
 * busy ones hold the memory the load waits until they are done with it.
 *
 * Only the task that needs a load waits for it: a task for a model that is in
 * memory takes it at once, whatever else is loading or waiting for room.
 */
import { EventEmitter, once } from 'node:events';
import { ProviderError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import type { LoadedModel } from '../../../proto/src/schemas/worker.ts';
import { abortedError } from '../providers/scrub.ts';

/** Loads and frees one kind of model; the pool decides when. */
export interface ModelLoader<M> {
  /** Memory a load of `name` will take (MB), known before loading it. */
  estimateMb(name: string): Promise<number>;
  /** Loads the model; `memMb` is what it really takes. */
  load(name: string): Promise<{ model: M; memMb: number }>;
  unload(model: M): Promise<void>;
}

export interface ModelPoolOptions<M> {
  loader: ModelLoader<M>;
  /** Memory all loaded models may take together, in MB (MODEL_MEMORY_MB). */
  budgetMb: number;
  /** How long a model nobody uses stays loaded (MODEL_IDLE_S × 1000). */
  idleMs: number;
  log: Logger;
}

/** One task's hold on a loaded model; release it once, when the task is done. */
export interface ModelLease<M> {
  readonly model: M;
  release(): void;
}

export type UnloadReason = 'idle' | 'memory' | 'close';

export interface ModelPoolEvents {
  loaded: [model: LoadedModel];
  unloaded: [event: { name: string; reason: UnloadReason }];
  /** Memory or a model may have become free: waiters look again. */
  released: [];
}

interface Entry<M> {
  name: string;
  /** The estimate while loading, then what the model really takes. */
  memMb: number;
  loading?: Promise<void>;
  model?: M;
  unloading?: Promise<void>;
  /** Tasks holding a lease. */
  users: number;
  /** Tasks waiting for this entry's load: it cannot be evicted under them. */
  waiting: number;
  loadMs: number;
  lastUsedAt: number;
  idleTimer?: NodeJS.Timeout;
}

function loadError(name: string, error: unknown): ProviderError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ProviderError(`model ${name} could not be loaded: ${reason}`, { cause: error });
}

/** Resolves with `work` or rejects as aborted when the signal fires first. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class ModelPool<M> extends EventEmitter<ModelPoolEvents> {
  private readonly entries = new Map<string, Entry<M>>();
  private readonly estimates = new Map<string, number>();
  private readonly log: Logger;
  private closing?: Promise<void>;

  constructor(private readonly options: ModelPoolOptions<M>) {
    super();
    this.setMaxListeners(0);
    this.log = options.log.child({ component: 'model-pool' });
  }

  /** A lease on `name`, loading it first if needed. */
  async acquire(name: string, signal: AbortSignal): Promise<ModelLease<M>> {
    for (;;) {
      if (this.closing) throw new ProviderError('the worker is closing its models');
      if (signal.aborted) throw abortedError();
      const entry = this.entries.get(name);
      if (entry?.model && !entry.unloading) return this.lease(entry);
      if (entry?.loading) {
        const lease = await this.waitForLoad(entry, signal);
        if (lease) return lease;
      } else if (entry?.unloading) await abortable(entry.unloading, signal);
      else await this.startLoad(name, signal);
    }
  }

  /** The models in memory now, for the heartbeat. */
  loaded(): LoadedModel[] {
    return [...this.entries.values()]
      .filter((entry) => entry.model !== undefined && !entry.unloading)
      .map((entry) => this.describe(entry));
  }

  /** Memory the models take or have reserved, in MB. */
  usedMb(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.memMb;
    return total;
  }

  /** Unloads every model; waits for loads under way first. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const all = [...this.entries.values()];
      await Promise.allSettled(all.map((entry) => entry.loading));
      await Promise.allSettled(
        [...this.entries.values()].map((entry) => entry.unloading ?? this.unload(entry, 'close')),
      );
      this.emit('released');
    })();
    return this.closing;
  }

  private lease(entry: Entry<M>): ModelLease<M> {
    const model = entry.model as M;
    entry.users += 1;
    entry.lastUsedAt = Date.now();
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        entry.users -= 1;
        entry.lastUsedAt = Date.now();
        this.settle(entry);
      },
    };
  }

  /**
   * Waits for the entry's load and takes a lease in the same step: between
   * the two the model is neither idle nor evictable.
   */
  private async waitForLoad(
    entry: Entry<M>,
    signal: AbortSignal,
  ): Promise<ModelLease<M> | undefined> {
    entry.waiting += 1;
    try {
      await abortable(entry.loading as Promise<void>, signal);
    } catch (error) {
      entry.waiting -= 1;
      this.settle(entry);
      throw error;
    }
    entry.waiting -= 1;
    if (entry.model && !entry.unloading) return this.lease(entry);
    this.settle(entry);
    return undefined;
  }

  /** Nobody uses or waits for a loaded model: its idle time starts, and others may take its room. */
  private settle(entry: Entry<M>): void {
    if (entry.model && !entry.unloading && entry.users === 0 && entry.waiting === 0) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = setTimeout(() => {
        if (entry.users === 0 && entry.waiting === 0) void this.unload(entry, 'idle');
      }, this.options.idleMs);
      entry.idleTimer.unref();
    }
    this.emit('released');
  }

  private async estimate(name: string): Promise<number> {
    const known = this.estimates.get(name);
    if (known !== undefined) return known;
    let mb: number;
    try {
      mb = await this.options.loader.estimateMb(name);
    } catch (error) {
      throw loadError(name, error);
    }
    this.estimates.set(name, mb);
    return mb;
  }

  /** Reserves room for `name` and starts its load; the caller then waits on it like any other. */
  private async startLoad(name: string, signal: AbortSignal): Promise<void> {
    const needMb = await abortable(this.estimate(name), signal);
    const { budgetMb } = this.options;
    if (needMb > budgetMb) {
      throw new ProviderError(
        `model ${name} needs about ${Math.ceil(needMb)} MB, more than MODEL_MEMORY_MB (${budgetMb})`,
      );
    }
    if (!(await this.makeRoom(name, needMb, signal))) return;
    const entry: Entry<M> = {
      name,
      memMb: needMb,
      users: 0,
      waiting: 0,
      loadMs: 0,
      lastUsedAt: Date.now(),
    };
    entry.loading = this.load(entry);
    // Its waiters get the failure; one that nobody waits for any more must not go unhandled.
    entry.loading.catch(() => {});
    this.entries.set(name, entry);
  }

  private async load(entry: Entry<M>): Promise<void> {
    const started = performance.now();
    try {
      const { model, memMb } = await this.options.loader.load(entry.name);
      entry.model = model;
      entry.memMb = memMb;
      entry.loadMs = Math.round(performance.now() - started);
      entry.loading = undefined;
      this.log.info(this.describe(entry), 'model loaded');
      this.emit('loaded', this.describe(entry));
      this.settle(entry);
    } catch (error) {
      this.entries.delete(entry.name);
      this.emit('released');
      const failure = loadError(entry.name, error);
      this.log.warn({ model: entry.name, err: failure.message }, 'model load failed');
      throw failure;
    }
    // The estimate fell short: idle models make up the difference.
    await this.evictIdleWhile(() => this.usedMb() > this.options.budgetMb);
  }

  private async evictIdleWhile(tooMuch: () => boolean): Promise<void> {
    for (let victim = this.leastRecentlyUsedIdle(); victim && tooMuch(); ) {
      await this.unload(victim, 'memory');
      victim = this.leastRecentlyUsedIdle();
    }
  }

  /**
   * Frees least recently used idle models until `needMb` fits, or waits for
   * busy ones to finish. False when another task started the same load meanwhile.
   */
  private async makeRoom(name: string, needMb: number, signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (this.entries.has(name) || this.closing) return false;
      if (this.usedMb() + needMb <= this.options.budgetMb) return true;
      const victim = this.leastRecentlyUsedIdle();
      if (victim) {
        await this.unload(victim, 'memory');
        continue;
      }
      this.log.info({ model: name, needMb, usedMb: this.usedMb() }, 'waiting for memory');
      await once(this, 'released', { signal }).catch((error: unknown) => {
        throw signal.aborted ? abortedError() : error;
      });
    }
  }

  private leastRecentlyUsedIdle(): Entry<M> | undefined {
    let oldest: Entry<M> | undefined;
    for (const entry of this.entries.values()) {
      const idle = entry.model && !entry.unloading && entry.users === 0 && entry.waiting === 0;
      if (idle && (!oldest || entry.lastUsedAt < oldest.lastUsedAt)) oldest = entry;
    }
    return oldest;
  }

  private unload(entry: Entry<M>, reason: UnloadReason): Promise<void> {
    if (entry.unloading) return entry.unloading;
    clearTimeout(entry.idleTimer);
    const model = entry.model as M;
    entry.unloading = (async () => {
      try {
        await this.options.loader.unload(model);
      } catch (error) {
        this.log.warn(
          { model: entry.name, err: error instanceof Error ? error.message : error },
          'model unload failed',
        );
      } finally {
        this.entries.delete(entry.name);
        this.log.info({ model: entry.name, reason }, 'model unloaded');
        this.emit('unloaded', { name: entry.name, reason });
        this.emit('released');
      }
    })();
    return entry.unloading;
  }

  private describe(entry: Entry<M>): LoadedModel {
    return {
      name: entry.name,
      memMb: Math.round(entry.memMb * 10) / 10,
      loadMs: entry.loadMs,
      lastUsedAt: entry.lastUsedAt,
    };
  }
}
