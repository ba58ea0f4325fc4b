/**
 * A heartbeat is bounded by its worker's slots: one that lists more attempts
 * than that is logged and dropped before anyone acts on it (the 'active'
 * listeners are what look leases up in the store and cancel attempts).
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import { createTopics } from '../../../proto/src/topics.ts';

/** A stand-in MQTT client: the registry only subscribes and listens for 'message'. */
class FakeMqtt extends EventEmitter {
  subscribeAsync = vi.fn(async () => []);
  deliver(topic: string, payload: unknown) {
    this.emit('message', topic, Buffer.from(JSON.stringify(payload)), { retain: false });
  }
}

const topics = createTopics();
const SLOTS = 2;
const online = (id: string) => ({
  state: 'online',
  id,
  kind: 'cpu',
  models: ['echo'],
  providers: ['echo'],
  slots: SLOTS,
  labels: {},
  version: 't',
  host: 'h',
  startedAt: 1,
});
const heartbeat = (id: string, attempts: number) => ({
  id,
  ts: Date.now(),
  cpuPct: 1,
  mem: { usedPct: 1, totalMb: 1, rssMb: 1 },
  gpus: [],
  freeSlots: 0,
  active: Array.from({ length: attempts }, (_, n) => ({
    taskId: `task-${n}`,
    attempt: 1,
    lease: `lease-${n}`,
  })),
});

describe('WorkerRegistry: heartbeats bounded by slots', () => {
  let mqtt: FakeMqtt;
  let registry: WorkerRegistry;
  let lines: Array<Record<string, unknown>>;

  beforeEach(async () => {
    vi.useFakeTimers();
    lines = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    mqtt = new FakeMqtt();
    registry = new WorkerRegistry({
      mqtt: mqtt as unknown as MqttClient,
      topics,
      log: pino({ level: 'warn' }, sink),
    });
    await registry.start();
    mqtt.deliver(topics.status('w1'), online('w1'));
  });

  afterEach(() => {
    registry.stop();
    vi.useRealTimers();
  });

  it('drops a heartbeat listing 1,024 attempts: nobody is asked to act, the worker is unchanged', () => {
    const active = vi.fn();
    const change = vi.fn();
    registry.on('active', active);
    registry.on('change', change);
    const lastSeen = registry.get('w1')?.lastSeen;
    vi.advanceTimersByTime(500);

    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1', 1_024));

    expect(active).not.toHaveBeenCalled();
    expect(change).not.toHaveBeenCalled();
    expect(registry.get('w1')?.lastSeen).toBe(lastSeen);
    expect(registry.get('w1')?.heartbeat).toBeUndefined();
    const warning = lines.find((l) => String(l.msg).startsWith('heartbeat dropped'));
    expect(warning).toMatchObject({ workerId: 'w1', listed: 1_024, slots: SLOTS });
    // Logged by count only: none of the listed leases reaches the log.
    expect(JSON.stringify(lines)).not.toContain('lease-');
  });

  it('drops one attempt too many, and takes a heartbeat within the slots', () => {
    const active = vi.fn();
    registry.on('active', active);
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1', SLOTS + 1));
    expect(active).not.toHaveBeenCalled();
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1', SLOTS));
    expect(active).toHaveBeenCalledTimes(1);
    expect(active.mock.calls[0]?.[1]).toHaveLength(SLOTS);
  });

  it('does not let an oversized heartbeat revive a worker that went silent', () => {
    vi.advanceTimersByTime(10_000);
    expect(registry.get('w1')?.state).toBe('offline');
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1', 1_024));
    expect(registry.get('w1')?.state).toBe('offline');
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1', 0));
    expect(registry.get('w1')?.state).toBe('online');
  });
});
