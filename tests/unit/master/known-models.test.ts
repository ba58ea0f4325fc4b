import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { KnownModels } from '../../../master/src/tasks/known-models.ts';
import type { QueueKey } from '../../../proto/src/queues.ts';

/** A registry that holds only what KnownModels reads. */
class FakeRegistry extends EventEmitter {
  readonly records = new Map<string, { status: { models: string[] } }>();
  list() {
    return [...this.records.values()];
  }
  get(id: string) {
    return this.records.get(id);
  }
}

describe('KnownModels', () => {
  it('knows served, remembered, stored and default models, and keeps the ones it saw', () => {
    const registry = new FakeRegistry();
    const lanes: QueueKey[] = [{ capability: 'any', model: 'from-the-store' }];
    const known = new KnownModels({
      registry: registry as never,
      laneKeys: () => lanes,
      always: ['echo'],
    });
    expect(known.has('echo')).toBe(true);
    expect(known.has('from-the-store')).toBe(true);
    expect(known.has('llama')).toBe(false);

    registry.records.set('w1', { status: { models: ['llama', 'mistral'] } });
    registry.emit('online', 'w1');
    registry.records.delete('w1'); // forgotten by the registry since
    expect(known.has('llama')).toBe(true);
    expect(known.list()).toEqual(['echo', 'from-the-store', 'llama', 'mistral']);

    registry.records.set('w2', { status: { models: ['offline-only'] } }); // never announced online
    expect(known.has('offline-only')).toBe(true);
    known.close();
    expect(registry.listenerCount('online')).toBe(0);
  });
});
