/**
 * The broker of docker-compose.yml and stack.yml on a real Mosquitto: the
 * dynamic-security file deploy/mosquitto/entrypoint.sh writes, our
 * mosquitto.conf, and the master's own provisioner (master/src/broker/dynsec.ts)
 * adding each worker's login as the master does when a worker enrolls. Each
 * worker then acts only as itself, _observer only reads logs, nobody gets in
 * without a login or under another's client id (which would hand it that
 * client's session), a revoked worker is out, and a restart keeps the
 * workers while taking rotated passwords. Denied messages are proved absent by a later
 * marker from the same publisher: Mosquitto delivers one client's messages
 * in order.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/logger.ts';
import {
  type DynsecProvisioner,
  startDynsecProvisioner,
} from '../../../master/src/broker/dynsec.ts';
import { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import type { ManagedServer } from '../../helpers/managed-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { type DeployFixture, startDeployFixture, startStackMosquitto } from './support.ts';

const topics = createTopics();
let fixture: DeployFixture;
let broker: ManagedServer;
let credentials: WorkerCredentials;
let provisioner: DynsecProvisioner;
let credentialsDir = '';
const issued = new Map<string, string>();
const clients: MqttClient[] = [];
const { logger: log } = createLogger({
  source: 'dynsec-test',
  level: 'warn',
  destination: new Writable({ write: (_chunk, _enc, done) => done() }),
});

/** Connects; resolves with the client, or rejects with the broker's refusal. */
async function login(username: string | undefined, password: string | undefined, clientId: string) {
  const client = mqtt.connect(broker.url, {
    clientId,
    username,
    password,
    clean: true,
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

const master = (clientId = `flota-master-${clients.length}`) =>
  login('_master', fixture.secret('mqtt_master_password'), clientId);
const observer = (clientId = 'flota-observer') =>
  login('_observer', fixture.secret('mqtt_observer_password'), clientId);

/** What the master does when a worker enrolls: a fresh credential, provisioned on the broker. */
async function enroll(id: string): Promise<string> {
  const credential = credentials.issue(id);
  await provisioner.provision(id, credential);
  issued.set(id, credential);
  return credential;
}
const worker = (id: string) => login(id, issued.get(id), workerClientId(id));

/** Collects topic → payloads a client receives. */
function inbox(client: MqttClient): Array<[string, string]> {
  const got: Array<[string, string]> = [];
  client.on('message', (topic, payload) => got.push([topic, payload.toString()]));
  return got;
}

const has = (box: Array<[string, string]>, topic: string, payload: string) =>
  box.some(([t, p]) => t === topic && p === payload);

/** The SUBACK code: 0-2 granted, 128 refused (which mqtt.js reports as an error). */
async function granted(client: MqttClient, topic: string): Promise<number | undefined> {
  try {
    const [grant] = await client.subscribeAsync(topic, { qos: 1 });
    return grant?.qos;
  } catch (err) {
    const code = (err as { packet?: { granted?: number[] } }).packet?.granted?.[0];
    if (code === undefined) throw err;
    return code;
  }
}

beforeAll(async () => {
  fixture = await startDeployFixture();
  broker = fixture.mosquitto;
  credentialsDir = mkdtempSync(join(tmpdir(), 'flota-dynsec-master-'));
  credentials = await WorkerCredentials.open({
    dataDir: credentialsDir,
    secret: fixture.secret('flota_secret'),
  });
  // The master's own login, as master/src/main.ts makes it with MQTT_DYNSEC=true.
  const masterClient = await master('flota-master-provisioner');
  provisioner = await startDynsecProvisioner({ mqtt: masterClient, topics, credentials, log });
  for (const id of ['cpu-1', 'cpu-2', 'cpu-3', 'cpu-4']) await enroll(id);
}, 60_000);

afterAll(async () => {
  await provisioner?.close();
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await broker?.stop();
  await fixture?.stop();
  if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
});

describe('Mosquitto with dynamic security', () => {
  it('refuses wrong passwords, unknown workers and one worker logging in as another', async () => {
    await expect(login('_master', 'wrong', 'flota-master-x')).rejects.toThrow(/Not authorized/i);
    await expect(login('_observer', 'wrong', 'observer-x')).rejects.toThrow(/Not authorized/i);
    await expect(
      login('cpu-9', credentials.issue('cpu-9'), workerClientId('cpu-9')),
    ).rejects.toThrow(/Not authorized/i);
    // The shared-password hole this setup closes: cpu-1's credential is not cpu-2's.
    await expect(login('cpu-2', issued.get('cpu-1'), workerClientId('cpu-2'))).rejects.toThrow(
      /Not authorized/i,
    );
    // A login is bound to its worker's client id.
    await expect(login('cpu-1', issued.get('cpu-1'), 'some-other-id')).rejects.toThrow(
      /Not authorized|Identifier rejected/i,
    );
  });

  it('lets the master hear status and heartbeats and hand tasks to one worker only', async () => {
    const m = await master();
    const mBox = inbox(m);
    await m.subscribeAsync([topics.allStatus(), topics.allHeartbeats()], { qos: 1 });
    const w1 = await worker('cpu-1');
    const w2 = await worker('cpu-2');
    const w1Box = inbox(w1);
    const w2Box = inbox(w2);
    expect(await granted(w1, topics.tasks('cpu-2'))).toBe(128);
    expect(await granted(w1, topics.tasks('cpu-1'))).toBe(1);
    expect(await granted(w2, topics.tasks('cpu-2'))).toBe(1);
    expect(await granted(w2, topics.control('cpu-2'))).toBe(1);

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
    const w2 = await worker('cpu-2');
    const w2Box = inbox(w2);
    await w2.subscribeAsync(topics.tasks('cpu-2'), { qos: 1 });
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
    expect(w2Box.filter(([, p]) => p === 'forged')).toEqual([]);
  });

  it('lets _observer read logs only, and publish nothing', async () => {
    const m = await master();
    const w3 = await worker('cpu-3');
    const w3Box = inbox(w3);
    await w3.subscribeAsync(topics.tasks('cpu-3'), { qos: 1 });
    const o = await observer();
    const oBox = inbox(o);
    for (const topic of ['#', 'flota/v1/#', topics.allStatus(), topics.tasks('cpu-3')]) {
      expect(await granted(o, topic), topic).toBe(128);
    }
    expect(await granted(o, topics.allLogs())).toBe(1);

    await o.publishAsync(topics.tasks('cpu-3'), 'from-observer', { qos: 1 });
    await o.publishAsync(topics.log('cpu-3'), 'forged-log', { qos: 1 });
    await m.publishAsync(topics.tasks('cpu-3'), 'secret-task', { qos: 1 });
    await m.publishAsync(topics.log('master'), 'master-log', { qos: 1 });
    await waitFor(() => has(w3Box, topics.tasks('cpu-3'), 'secret-task'), { what: 'task' });
    await waitFor(() => has(oBox, topics.log('master'), 'master-log'), { what: 'master log' });
    expect(oBox.map(([t]) => t)).toEqual([topics.log('master')]);
    expect(has(w3Box, topics.tasks('cpu-3'), 'from-observer')).toBe(false);
  });

  it('lets nobody but the worker itself take over its client id, and so its session', async () => {
    // Mosquitto would hand that client the worker's session: its subscriptions
    // and the assignments queued for it. Refusing the login is what prevents it.
    const cpu4 = workerClientId('cpu-4');
    await expect(login(undefined, undefined, cpu4)).rejects.toThrow(/Not authorized/i);
    await expect(login(undefined, undefined, 'anyone')).rejects.toThrow(/Not authorized/i);
    await expect(observer(cpu4)).rejects.toThrow(/Not authorized|Identifier rejected/i);
    await expect(login('cpu-1', issued.get('cpu-1'), cpu4)).rejects.toThrow(
      /Not authorized|Identifier rejected/i,
    );
    await worker('cpu-4');
  });

  it('disconnects a revoked worker and refuses it from then on', async () => {
    const w3 = await worker('cpu-3');
    const closed = new Promise<void>((resolve) => w3.once('close', () => resolve()));
    await credentials.revoke('cpu-3');
    await closed;
    await expect(worker('cpu-3')).rejects.toThrow(/Not authorized/i);
    // Enrolling again (a new credential) brings it back.
    await enroll('cpu-3');
    await worker('cpu-3');
  });

  it('keeps the workers across a restart and takes rotated passwords from the secrets', async () => {
    await provisioner.close();
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await broker.stop();
    const oldMaster = fixture.secret('mqtt_master_password');
    writeFileSync(fixture.secretPath('mqtt_master_password'), `${'b'.repeat(64)}\n`);
    writeFileSync(fixture.secretPath('mqtt_observer_password'), `${'c'.repeat(64)}\n`);
    broker = await startStackMosquitto(join(fixture.secretPath('x'), '..'), fixture.dataDir);

    await expect(login('_master', oldMaster, 'flota-master-old')).rejects.toThrow(
      /Not authorized/i,
    );
    const m = await master();
    const o = await observer();
    expect(await granted(o, topics.allLogs())).toBe(1);
    const mBox = inbox(m);
    await m.subscribeAsync(topics.allHeartbeats(), { qos: 1 });
    // The master provisioned these before the restart; the plugin kept them.
    const w1 = await worker('cpu-1');
    await w1.publishAsync(topics.heartbeat('cpu-1'), 'after-restart', { qos: 1 });
    await waitFor(() => has(mBox, topics.heartbeat('cpu-1'), 'after-restart'), {
      what: 'heartbeat after the restart',
    });
    // The master adds its roles again on start: nothing conflicts with what is there.
    provisioner = await startDynsecProvisioner({ mqtt: m, topics, credentials, log });
    await enroll('cpu-5');
    await worker('cpu-5');
  });
});
