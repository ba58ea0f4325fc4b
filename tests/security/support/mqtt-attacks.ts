/**
 * The MQTT attacks, as one suite run against every broker flota supports:
 * the embedded broker of a default `npm start` and a Mosquitto with the
 * dynamic-security plugin. Each case attacks, then proves the system still
 * works (a task completes, the victim is still online) and that nothing
 * leaked or changed.
 *
 * A refusal is asserted on what the broker answered (CONNACK, SUBACK, a
 * closed connection). Where a broker may drop a message silently, the case
 * waits for a task's whole round trip after the attack (so the message, had
 * it got through, would have been handled) before checking its effect.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { expect, it } from 'vitest';
import type { Topics } from '../../../proto/src/topics.ts';
import { workerClientId } from '../../../proto/src/topics.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import {
  closeQuietly,
  collect,
  mqttConnect,
  publishAcked,
  rssMiB,
  subscribeGranted,
} from './attacker.ts';

export interface MqttTarget {
  mqttUrl: string;
  topics: Topics;
  /** A real worker, online, serving `echo`. */
  victimId: string;
  /** Another real worker (two "cancel everything" messages should not leave the fleet empty). */
  otherId: string;
  /** A credential for a worker id, as an operator would issue one. */
  issueCredential(workerId: string): Promise<string>;
  /** Submits an echo task and resolves with its answer once completed. */
  roundTrip(prompt: string): Promise<string>;
  /** The master's view of a worker. */
  workerState(workerId: string): Promise<'online' | 'offline' | 'absent'>;
  /** The process whose memory a retained flood would grow (the broker's). */
  brokerPid(): number;
  /** How a log observer logs in (anonymously when unset). */
  observer?: IClientOptions;
}

const onlineRecord = (id: string, slots = 2) =>
  JSON.stringify({
    state: 'online',
    id,
    kind: 'cpu',
    models: ['echo'],
    providers: ['echo'],
    slots,
    labels: {},
    weight: 1,
    version: 'rogue',
    host: 'elsewhere',
    heartbeatMs: 1_000,
    startedAt: Date.now(),
  });

const heartbeat = (id: string, attempts: number) =>
  JSON.stringify({
    id,
    ts: Date.now(),
    cpuPct: 1,
    mem: { usedPct: 1, totalMb: 1, rssMb: 1 },
    gpus: [],
    freeSlots: 2,
    active: Array.from({ length: attempts }, (_, i) => ({
      taskId: `fake-${i}`,
      attempt: 1,
      lease: `lease-${i}`,
    })),
    draining: false,
  });

export function mqttAttacks(target: () => MqttTarget): void {
  it('an anonymous client cannot register a worker, receive tasks or read heartbeats', async () => {
    const t = target();
    const { client, refused } = await mqttConnect(t.mqttUrl);
    // Either refused outright, or admitted as a read-only log observer.
    if (client) {
      const seen = collect(client);
      for (const filter of [
        '#',
        `${t.topics.prefix}/#`,
        `${t.topics.prefix}/workers/+/tasks`,
        t.topics.tasks(t.victimId),
        t.topics.control(t.victimId),
        t.topics.allHeartbeats(),
        t.topics.allStatus(),
      ]) {
        expect(await subscribeGranted(client, filter), filter).toBe(128);
      }
      await publishAcked(client, t.topics.status('intruder-1'), onlineRecord('intruder-1'), {
        retain: true,
      });
      expect(await t.roundTrip('anonymous round trip')).toContain('anonymous round trip');
      expect(seen.filter((m) => !m.topic.startsWith(`${t.topics.prefix}/logs/`))).toEqual([]);
      expect(await t.workerState('intruder-1')).toBe('absent');
    } else {
      expect(refused).toBeTruthy();
    }
    await closeQuietly(client);
  });

  it('nobody stops or drains a worker through its control topic', async () => {
    const t = target();
    // A fresh connection per message: a broker may close one after a refused publish.
    for (const id of [t.victimId, t.otherId]) {
      for (const type of ['shutdown', 'drain']) {
        const { client } = await mqttConnect(t.mqttUrl);
        if (client) await publishAcked(client, t.topics.control(id), JSON.stringify({ type }));
        await closeQuietly(client);
      }
    }
    expect(await t.roundTrip('after control attack')).toContain('after control attack');
    expect(await t.workerState(t.victimId)).toBe('online');
    expect(await t.workerState(t.otherId)).toBe('online');
  });

  it("a worker's client id cannot be taken over without its credential", async () => {
    const t = target();
    const clientId = workerClientId(t.victimId);
    const attempts = [
      await mqttConnect(t.mqttUrl, { clientId }),
      await mqttConnect(t.mqttUrl, { clientId, username: t.victimId, password: 'guess' }),
      await mqttConnect(t.mqttUrl, {
        clientId,
        username: t.victimId,
        password: await t.issueCredential('someone-else'),
      }),
    ];
    for (const attempt of attempts) {
      expect(attempt.refused, 'take-over refused').toBeTruthy();
      await closeQuietly(attempt.client);
    }
    expect(await t.roundTrip('victim still serves')).toContain('victim still serves');
    expect(await t.workerState(t.victimId)).toBe('online');
  });

  it('a worker with its own credential acts only as itself', async () => {
    const t = target();
    const rogueId = `rogue-${Date.now().toString(36)}`;
    const login = {
      clientId: workerClientId(rogueId),
      username: rogueId,
      password: await t.issueCredential(rogueId),
    };
    const connect = async () => {
      const { client, refused } = await mqttConnect(t.mqttUrl, login);
      expect(refused).toBeUndefined();
      return client as MqttClient;
    };
    // Acting as the victim, each on a connection of its own (a refusal may close it).
    const offline = JSON.stringify({ state: 'offline', id: t.victimId });
    for (const [topic, payload] of [
      [t.topics.status(t.victimId), offline],
      [t.topics.heartbeat(t.victimId), heartbeat(t.victimId, 0)],
      [t.topics.control(t.victimId), JSON.stringify({ type: 'shutdown' })],
    ] as const) {
      const impostor = await connect().catch(() => undefined);
      if (impostor) await publishAcked(impostor, topic, payload, { retain: true });
      await closeQuietly(impostor);
    }
    const client = await connect();
    const seen = collect(client);
    // Its own topics: granted. Anyone else's: refused.
    expect(await subscribeGranted(client, t.topics.control(rogueId))).toBe(1);
    expect(await subscribeGranted(client, t.topics.tasks(t.victimId))).toBe(128);
    expect(await subscribeGranted(client, `${t.topics.prefix}/workers/+/tasks`)).toBe(128);
    // One heartbeat claiming 1,024 attempts: dropped whole, no look-ups, no cancels sent back.
    await publishAcked(client, t.topics.status(rogueId), onlineRecord(rogueId), { retain: true });
    await publishAcked(client, t.topics.heartbeat(rogueId), heartbeat(rogueId, 1_024));
    expect(await t.roundTrip('after the rogue')).toContain('after the rogue');
    expect(await t.workerState(t.victimId)).toBe('online');
    expect(seen.filter((m) => m.topic === t.topics.control(rogueId))).toEqual([]);
    // Leave as a worker does, so later cases see the fleet as it was.
    const last = await connect();
    await publishAcked(
      last,
      t.topics.status(rogueId),
      JSON.stringify({ state: 'offline', id: rogueId, reason: 'shutdown' }),
      { retain: true },
    );
    await closeQuietly(client, last);
  });

  it('a flood of large retained messages is not kept and costs the broker no memory', async () => {
    const t = target();
    const before = await rssMiB(t.brokerPid());
    const mib = Buffer.alloc(1_048_576, 0x61);
    const logs = `${t.topics.prefix}/logs/`;
    for (let i = 0; i < 150; i++) {
      const { client } = await mqttConnect(t.mqttUrl);
      if (client) await publishAcked(client, `${logs}flood-${i}`, mib, { retain: true });
      await closeQuietly(client);
    }
    // A new observer gets every retained message on subscribing, before any live one.
    const { client: observer } = await mqttConnect(t.mqttUrl, t.observer);
    expect(observer).toBeDefined();
    if (!observer) return;
    const seen = collect(observer, logs);
    expect(await subscribeGranted(observer, `${logs}#`)).toBe(1);
    expect(await t.roundTrip('after the flood')).toContain('after the flood');
    await waitFor(() => seen.some((m) => !m.topic.includes('/flood-')), {
      what: 'a live log line after any retained ones',
    });
    expect(seen.filter((m) => m.topic.includes('/flood-')).map((m) => m.topic)).toEqual([]);
    await closeQuietly(observer);
    const after = await rssMiB(t.brokerPid());
    expect(after - before).toBeLessThan(40);
  });
}
