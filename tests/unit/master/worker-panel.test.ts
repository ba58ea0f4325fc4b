/**
 * The chat UI's worker panel stays small however large the fleet: at most
 * `max` worker views, online ones first, and the whole fleet in numbers.
 */
import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import type { WorkerOffline, WorkerOnline } from '../../../proto/src/schemas/worker.ts';
import { createTopics } from '../../../proto/src/topics.ts';

class FakeMqtt extends EventEmitter {
  subscribeAsync = vi.fn(async () => []);
  unsubscribeAsync = vi.fn(async () => undefined);
  deliver(topic: string, payload: unknown) {
    this.emit('message', topic, Buffer.from(JSON.stringify(payload)), { retain: false });
  }
}

const topics = createTopics();
const online = (id: string, kind: 'cpu' | 'gpu', models: string[]): WorkerOnline => ({
  state: 'online',
  id,
  kind,
  models,
  providers: ['echo'],
  slots: 4,
  labels: {},
  weight: 1,
  version: 't',
  host: 'h',
  heartbeatMs: 1_000,
  startedAt: 1,
});

let registry: WorkerRegistry | undefined;
afterEach(() => registry?.stop());

describe('the worker panel', () => {
  it('lists at most max workers, online first, and counts the whole fleet', async () => {
    const mqtt = new FakeMqtt();
    registry = new WorkerRegistry({
      mqtt: mqtt as unknown as MqttClient,
      topics,
      log: pino({ level: 'silent' }),
    });
    await registry.start();
    for (let i = 0; i < 30; i += 1) {
      const id = `w${String(i).padStart(2, '0')}`;
      mqtt.deliver(topics.status(id), online(id, i % 3 === 0 ? 'gpu' : 'cpu', ['echo']));
    }
    mqtt.deliver(topics.status('a-gpu'), online('a-gpu', 'gpu', ['llama3']));
    const gone: WorkerOffline = {
      state: 'offline',
      id: 'w00',
      reason: 'shutdown',
    } as WorkerOffline;
    mqtt.deliver(topics.status('w00'), gone);

    const panel = registry.panel(5);
    expect(panel.workers.map((w) => w.id)).toEqual(['a-gpu', 'w01', 'w02', 'w03', 'w04']);
    expect(panel.models).toEqual(['echo', 'llama3']);
    expect(panel.fleet).toEqual({
      online: 30,
      offline: 1,
      slots: 120,
      active: 0,
      models: { echo: { cpu: 20, gpu: 9 }, llama3: { cpu: 0, gpu: 1 } },
    });
    // Fewer workers than the cap: every one, online first, then the offline.
    expect(registry.panel(100).workers.at(-1)?.id).toBe('w00');
  });
});
