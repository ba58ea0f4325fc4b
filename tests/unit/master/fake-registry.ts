/** A WorkerRegistry on a stand-in MQTT client, for unit tests that feed it statuses and heartbeats. */
import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { vi } from 'vitest';
import { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import type { Topics } from '../../../proto/src/topics.ts';

export class FakeMqtt extends EventEmitter {
  subscribeAsync = vi.fn(async () => []);
  unsubscribeAsync = vi.fn(async () => undefined);
  deliver(topic: string, payload: unknown) {
    this.emit('message', topic, Buffer.from(JSON.stringify(payload)), { retain: false });
  }
}

/** A started registry listening to a fresh FakeMqtt; stop it with `registry.stop()`. */
export async function startFakeRegistry(
  topics: Topics,
): Promise<{ mqtt: FakeMqtt; registry: WorkerRegistry }> {
  const mqtt = new FakeMqtt();
  const registry = new WorkerRegistry({
    mqtt: mqtt as unknown as MqttClient,
    topics,
    log: pino({ level: 'silent' }),
  });
  await registry.start();
  return { mqtt, registry };
}
