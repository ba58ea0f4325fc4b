/**
 * deploy/mosquitto/flota.acl on a real Mosquitto: the master, each worker and
 * the observer get exactly the topics docs/PROTOCOL.md gives them. Denied
 * messages are proved absent by a later marker from the same publisher:
 * Mosquitto delivers one client's messages in order.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type DeployFixture, startDeployFixture, TEST_WORKER_MAX } from './support.ts';

const topics = createTopics();
let fixture: DeployFixture;
const clients: MqttClient[] = [];

beforeAll(async () => {
  fixture = await startDeployFixture();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await fixture?.stop();
});

/** Connects; resolves with the client, or rejects with the broker's refusal. */
async function login(username: string | undefined, password: string | undefined, clientId: string) {
  const client = mqtt.connect(fixture.mosquitto.url, {
    clientId,
    username,
    password,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

const master = () => login('_master', fixture.secret('mqtt_master_password'), 'flota-master-t1');
const worker = (id: string) =>
  login(id, fixture.secret('mqtt_worker_password'), workerClientId(id));
const observer = () => login('_observer', fixture.secret('mqtt_observer_password'), 'observer-t');

/** Collects topic → payloads a client receives. */
function inbox(client: MqttClient): Array<[string, string]> {
  const got: Array<[string, string]> = [];
  client.on('message', (topic, payload) => got.push([topic, payload.toString()]));
  return got;
}

const has = (box: Array<[string, string]>, topic: string, payload: string) =>
  box.some(([t, p]) => t === topic && p === payload);

describe('Mosquitto ACL', () => {
  it('refuses anonymous clients, wrong passwords and unknown workers', async () => {
    await expect(login(undefined, undefined, 'anon')).rejects.toThrow(/Not authorized/i);
    await expect(login('_master', 'wrong', 'flota-master-x')).rejects.toThrow(/Not authorized/i);
    const beyond = `cpu-${TEST_WORKER_MAX + 1}`;
    await expect(worker(beyond)).rejects.toThrow(/Not authorized/i);
  });

  it('lets the master hear status and heartbeats and hand tasks to one worker only', async () => {
    const m = await master();
    const mBox = inbox(m);
    await m.subscribeAsync([topics.allStatus(), topics.allHeartbeats()], { qos: 1 });
    const w1 = await worker('cpu-1');
    const w2 = await worker('cpu-2');
    const w1Box = inbox(w1);
    const w2Box = inbox(w2);
    await w1.subscribeAsync({
      [topics.tasks('cpu-1')]: { qos: 1 },
      [topics.tasks('cpu-2')]: { qos: 1 },
    });
    await w2.subscribeAsync({
      [topics.tasks('cpu-2')]: { qos: 1 },
      [topics.control('cpu-2')]: { qos: 1 },
    });

    await w1.publishAsync(topics.status('cpu-1'), 'online-1', { qos: 1, retain: true });
    await w1.publishAsync(topics.heartbeat('cpu-1'), 'beat-1', { qos: 0 });
    await waitFor(() => has(mBox, topics.heartbeat('cpu-1'), 'beat-1'), { what: 'heartbeat' });
    expect(has(mBox, topics.status('cpu-1'), 'online-1')).toBe(true);

    await m.publishAsync(topics.tasks('cpu-2'), 'task-for-2', { qos: 1 });
    await m.publishAsync(topics.control('cpu-2'), 'cancel-for-2', { qos: 1 });
    await m.publishAsync(topics.tasks('cpu-1'), 'task-for-1', { qos: 1 });
    await waitFor(() => has(w1Box, topics.tasks('cpu-1'), 'task-for-1'), { what: 'own task' });
    await waitFor(() => has(w2Box, topics.control('cpu-2'), 'cancel-for-2'), { what: 'control' });
    expect(has(w2Box, topics.tasks('cpu-2'), 'task-for-2')).toBe(true);
    expect(w1Box.map(([t]) => t)).toEqual([topics.tasks('cpu-1')]);
  });

  it('keeps a worker to its own status, heartbeat and log topics', async () => {
    const m = await master();
    const mBox = inbox(m);
    await m.subscribeAsync([topics.allStatus(), topics.allHeartbeats()], { qos: 1 });
    const o = await observer();
    const oBox = inbox(o);
    await o.subscribeAsync(topics.allLogs(), { qos: 1 });
    const w1 = await worker('cpu-1');

    await w1.publishAsync(topics.status('cpu-2'), 'forged', { qos: 1 });
    await w1.publishAsync(topics.heartbeat('cpu-2'), 'forged', { qos: 1 });
    await w1.publishAsync(topics.tasks('cpu-2'), 'forged', { qos: 1 });
    await w1.publishAsync(topics.log('master'), 'forged', { qos: 1 });
    await w1.publishAsync(topics.log('cpu-1'), 'log-1', { qos: 1 });
    await w1.publishAsync(topics.heartbeat('cpu-1'), 'marker', { qos: 1 });
    await waitFor(() => has(mBox, topics.heartbeat('cpu-1'), 'marker'), { what: 'marker' });
    await waitFor(() => has(oBox, topics.log('cpu-1'), 'log-1'), { what: 'own log line' });
    expect(mBox.filter(([, p]) => p === 'forged')).toEqual([]);
    expect(oBox.filter(([, p]) => p === 'forged')).toEqual([]);
  });

  it('gives the observer logs, status and heartbeats, never tasks, and no way to publish', async () => {
    const m = await master();
    const o = await observer();
    const oBox = inbox(o);
    await o.subscribeAsync('flota/v1/#', { qos: 1 });
    const w3 = await worker('cpu-3');
    const w3Box = inbox(w3);
    await w3.subscribeAsync(topics.tasks('cpu-3'), { qos: 1 });

    await o.publishAsync(topics.tasks('cpu-3'), 'from-observer', { qos: 1 });
    await m.publishAsync(topics.tasks('cpu-3'), 'secret-task', { qos: 1 });
    await m.publishAsync(topics.log('master'), 'master-log', { qos: 1 });
    await w3.publishAsync(topics.heartbeat('cpu-3'), 'beat-3', { qos: 1 });
    await waitFor(() => has(w3Box, topics.tasks('cpu-3'), 'secret-task'), { what: 'task' });
    await waitFor(() => has(oBox, topics.log('master'), 'master-log'), { what: 'master log' });
    await waitFor(() => has(oBox, topics.heartbeat('cpu-3'), 'beat-3'), { what: 'heartbeat' });
    expect(oBox.some(([t]) => t.endsWith('/tasks'))).toBe(false);
    expect(has(w3Box, topics.tasks('cpu-3'), 'from-observer')).toBe(false);
  });
});
