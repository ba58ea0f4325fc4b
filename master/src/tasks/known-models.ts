/**
 * The models this fleet knows: served by a worker now, by one the registry
 * still remembers offline, by any worker seen online since this master
 * started, or named by a queue found in the store (tasks from before a
 * restart). A submission for any other model is refused at once: it could
 * only wait for its timeout, and every new name would open a queue.
 *
 * A pool scaled to zero keeps its models known: its workers were seen, or
 * its queue is in the store.
 */
import type { QueueKey } from '../../../proto/src/queues.ts';
import type { WorkerRegistry } from '../registry/registry.ts';

export interface KnownModelsDeps {
  registry: Pick<WorkerRegistry, 'list' | 'get' | 'on' | 'off'>;
  /** Queues with a lane: every stored queue after start, and each one submitted to since. */
  laneKeys: () => QueueKey[];
  /** Always known (the default model of a submission that names none). */
  always?: readonly string[];
}

export class KnownModels {
  private readonly seen = new Set<string>();
  private readonly onOnline = (workerId: string) => {
    for (const model of this.deps.registry.get(workerId)?.status.models ?? []) this.seen.add(model);
  };

  constructor(private readonly deps: KnownModelsDeps) {
    for (const model of deps.always ?? []) this.seen.add(model);
    deps.registry.on('online', this.onOnline);
  }

  /** Whether the model is known; looks again at the registry and lanes only on a miss. */
  has(model: string): boolean {
    if (this.seen.has(model)) return true;
    this.refresh();
    return this.seen.has(model);
  }

  /** Every known model, sorted. */
  list(): string[] {
    this.refresh();
    return [...this.seen].sort();
  }

  close(): void {
    this.deps.registry.off('online', this.onOnline);
  }

  private refresh(): void {
    for (const record of this.deps.registry.list()) {
      for (const model of record.status.models) this.seen.add(model);
    }
    for (const key of this.deps.laneKeys()) this.seen.add(key.model);
  }
}
