import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FORGET_OFFLINE_MS, isWorkerDead } from '../../../master/src/registry/liveness.ts';
import { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import { WILL_GRACE_MS } from '../../../master/src/registry/will-grace.ts';
import { createTopics } from '../../../proto/src/topics.ts';

describe('isWorkerDead', () => {
  it('allows up to three missed heartbeats', () => {
    expect(isWorkerDead(0, 3_000, 1_000)).toBe(false);
    expect(isWorkerDead(0, 3_001, 1_000)).toBe(true);
    expect(isWorkerDead(0, 5_000, 1_000, 5)).toBe(false);
  });
});

/** A stand-in MQTT client: the registry only subscribes and listens for 'message'. */
class FakeMqtt extends EventEmitter {
  subscribeAsync = vi.fn(async () => []);
  deliver(topic: string, payload: unknown, retain = false) {
    this.emit(
      'message',
      topic,
      Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)),
      { retain },
    );
  }
}

const topics = createTopics();
const onlineStatus = (id: string, startedAt = 1) => ({
  state: 'online',
  id,
  kind: 'cpu',
  models: ['echo'],
  providers: ['echo'],
  slots: 2,
  labels: {},
  version: 't',
  host: 'h',
  startedAt,
});
const heartbeat = (id: string) => ({
  id,
  ts: Date.now(),
  cpuPct: 1,
  mem: { usedPct: 1, totalMb: 1, rssMb: 1 },
  gpus: [],
  freeSlots: 2,
  active: [],
});

describe('WorkerRegistry (fake timers)', () => {
  let mqtt: FakeMqtt;
  let registry: WorkerRegistry;
  beforeEach(async () => {
    vi.useFakeTimers();
    mqtt = new FakeMqtt();
    registry = new WorkerRegistry({
      mqtt: mqtt as unknown as MqttClient,
      topics,
      log: pino({ level: 'silent' }),
      sweepIntervalMs: 100,
    });
    await registry.start();
  });
  afterEach(() => {
    registry.stop();
    vi.useRealTimers();
  });

  it('declares a silent worker dead after three missed heartbeats and lists its tasks', () => {
    const offline = vi.fn();
    registry.on('offline', offline);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    registry.reserve('w1', 'task-1', 1);
    vi.advanceTimersByTime(2_500);
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1'));
    vi.advanceTimersByTime(3_000);
    expect(offline).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_100);
    expect(offline).toHaveBeenCalledWith('w1', 'missed_heartbeats', [
      { taskId: 'task-1', attempt: 1 },
    ]);
    expect(registry.get('w1')?.state).toBe('offline');
  });

  it('takes the Last Will at once and welcomes the worker back', () => {
    const offline = vi.fn();
    registry.on('offline', offline);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'lost' });
    expect(registry.get('w1')?.state).toBe('offline');
    vi.advanceTimersByTime(WILL_GRACE_MS);
    expect(offline).toHaveBeenCalledWith('w1', 'lost', []);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1', 2));
    expect(registry.available({ model: 'echo', gpu: false }).map((w) => w.status.id)).toEqual([
      'w1',
    ]);
  });

  it('withdraws a Last Will when its own broker link drops right after (a broker shutting down)', () => {
    const offline = vi.fn();
    registry.on('offline', offline);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    registry.reserve('w1', 't', 1);
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'lost' });
    mqtt.emit('close');
    vi.advanceTimersByTime(WILL_GRACE_MS * 2);
    expect(offline).not.toHaveBeenCalled();
    expect(registry.get('w1')?.state).toBe('online');
    expect(registry.get('w1')?.active.get('t')).toBe(1);
  });

  it('does not bring back a slot freed while the Last Will was held', () => {
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    registry.reserve('w1', 'done-meanwhile', 1);
    registry.reserve('w1', 'still-running', 1);
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'lost' });
    registry.release('w1', 'done-meanwhile');
    mqtt.emit('close');
    expect([...(registry.get('w1')?.active.keys() ?? [])]).toEqual(['still-running']);
  });

  it('forgets a worker that has been offline for FORGET_OFFLINE_MS', () => {
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'shutdown' });
    expect(registry.get('w1')?.state).toBe('offline');
    vi.advanceTimersByTime(FORGET_OFFLINE_MS + 1_000);
    expect(registry.get('w1')).toBeUndefined();
    expect(registry.capable({ model: 'echo', gpu: false })).toEqual([]);
  });

  it('withdraws a Last Will when the same process is back within the grace', () => {
    const offline = vi.fn();
    registry.on('offline', offline);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1', 7));
    registry.reserve('w1', 't', 1);
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'lost' });
    mqtt.deliver(topics.status('w1'), onlineStatus('w1', 7));
    vi.advanceTimersByTime(WILL_GRACE_MS * 2);
    expect(offline).not.toHaveBeenCalled();
    expect(registry.get('w1')?.active.get('t')).toBe(1);
  });

  it('treats a new startedAt as a restart that lost the old tasks', () => {
    const offline = vi.fn();
    registry.on('offline', offline);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1', 1));
    registry.reserve('w1', 't', 1);
    mqtt.deliver(topics.status('w1'), onlineStatus('w1', 2));
    expect(offline).toHaveBeenCalledWith('w1', 'restarted', [{ taskId: 't', attempt: 1 }]);
    expect(registry.get('w1')?.state).toBe('online');
  });

  it('revives a worker whose heartbeats resume after it was judged dead (a pause, not a crash)', () => {
    const online = vi.fn();
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    registry.on('online', online);
    vi.advanceTimersByTime(4_000);
    expect(registry.get('w1')?.state).toBe('offline');
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1'));
    expect(registry.get('w1')?.state).toBe('online');
    expect(online).toHaveBeenCalledWith('w1');
    // A worker that said goodbye (Last Will) is not revived by a stray heartbeat.
    mqtt.deliver(topics.status('w1'), { state: 'offline', id: 'w1', reason: 'lost' });
    mqtt.deliver(topics.heartbeat('w1'), heartbeat('w1'));
    expect(registry.get('w1')?.state).toBe('offline');
  });

  it('gives a worker known only from a retained status no work before its first heartbeat', () => {
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'), true);
    const need = { model: 'echo', gpu: false };
    expect(registry.capable(need)).toHaveLength(1);
    expect(registry.available(need)).toHaveLength(0);
    const active = vi.fn();
    registry.on('active', active);
    mqtt.deliver(topics.heartbeat('w1'), {
      ...heartbeat('w1'),
      active: [{ taskId: 't', attempt: 2, lease: 'L' }],
    });
    expect(active).toHaveBeenCalledWith('w1', [{ taskId: 't', attempt: 2, lease: 'L' }]);
    expect(registry.available(need)).toHaveLength(1);
  });

  it('judges nobody while its own broker link is down, and grants a grace when it is back', () => {
    mqtt.deliver(topics.status('w1'), onlineStatus('w1'));
    mqtt.emit('close');
    expect(registry.partitioned()).toBe(true);
    vi.advanceTimersByTime(10_000);
    expect(registry.get('w1')?.state).toBe('online');
    mqtt.emit('connect');
    vi.advanceTimersByTime(2_500);
    expect(registry.get('w1')?.state).toBe('online');
    vi.advanceTimersByTime(1_000);
    expect(registry.get('w1')?.state).toBe('offline');
  });

  it('drops bad input: wrong JSON, wrong shape, and a status claiming another id', () => {
    mqtt.deliver(topics.status('w1'), '{not json');
    mqtt.deliver(topics.status('w1'), { state: 'online', id: 'w1' });
    mqtt.deliver(topics.status('w1'), onlineStatus('w2'));
    mqtt.deliver(topics.heartbeat('w9'), heartbeat('w9'));
    expect(registry.list()).toEqual([]);
  });

  it('filters by GPU and model, and counts slots it reserved', () => {
    mqtt.deliver(topics.status('c1'), onlineStatus('c1'));
    mqtt.deliver(topics.status('g1'), { ...onlineStatus('g1'), kind: 'gpu', slots: 1 });
    expect(registry.available({ model: 'echo', gpu: true }).map((w) => w.status.id)).toEqual([
      'g1',
    ]);
    expect(registry.available({ model: 'other', gpu: false })).toEqual([]);
    registry.reserve('g1', 't1', 1);
    expect(registry.available({ model: 'echo', gpu: true })).toEqual([]);
    registry.release('g1', 't1');
    expect(registry.available({ model: 'echo', gpu: true })).toHaveLength(1);
  });
});
