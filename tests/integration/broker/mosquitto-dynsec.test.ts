/**
 * A real Mosquitto with the dynamic-security plugin: the master provisions a
 * worker login per issued credential; the worker may then act only as
 * itself; revoking it disconnects it and refuses it from then on.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type DynsecProvisioner,
  startDynsecProvisioner,
} from '../../../master/src/broker/dynsec.ts';
import type { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import { type MosquittoServer, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { testLogger } from '../master/support.ts';
import {
  collect,
  connect,
  connectRefused,
  connectWorker,
  granted,
  openTestCredentials,
} from './support.ts';

const topics = createTopics();
const ADMIN = { adminUsername: 'flota-admin', adminPassword: 'admin-password-for-tests' };

describe('Mosquitto dynamic security', () => {
  let mosquitto: MosquittoServer;
  let credentials: WorkerCredentials;
  let removeCredentials: () => Promise<void>;
  let master: MqttClient;
  let masterSaw: string[];
  let dynsec: DynsecProvisioner;
  const opened: MqttClient[] = [];
  const track = (client: MqttClient) => {
    opened.push(client);
    return client;
  };

  beforeAll(async () => {
    mosquitto = await startMosquitto({ dynsec: ADMIN });
    ({ credentials, remove: removeCredentials } = await openTestCredentials());
    master = await connect(mosquitto.url, {
      clientId: 'flota-master-dynsec',
      username: ADMIN.adminUsername,
      password: ADMIN.adminPassword,
      // Mosquitto disconnects the master once, when the provisioner gives it its role.
      reconnectPeriod: 100,
    });
    dynsec = await startDynsecProvisioner({
      mqtt: master,
      topics,
      credentials,
      log: testLogger('master').logger,
    });
    masterSaw = collect(master);
    // Granted only once the provisioner gave the master its role.
    expect(
      await granted(master, [topics.allStatus(), topics.allHeartbeats(), topics.allLogs()]),
    ).toEqual([1, 1, 1]);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => {
    await dynsec?.close();
    await master?.endAsync();
    await mosquitto?.stop();
    await removeCredentials?.();
  });

  it('starts twice on the same broker (roles already there)', async () => {
    const again = await startDynsecProvisioner({
      mqtt: master,
      topics,
      credentials,
      log: testLogger('master').logger,
    });
    await again.close();
  });

  it('lets a provisioned worker in, on its own client id and credential only', async () => {
    const credential = credentials.issue('w-a');
    await dynsec.provision('w-a', credential);
    track(await connectWorker(mosquitto.url, 'w-a', credential)).end(true);
    expect(
      await connectRefused(mosquitto.url, {
        clientId: 'not-mine',
        username: 'w-a',
        password: credential,
      }),
    ).toBeGreaterThanOrEqual(4);
    expect(
      await connectRefused(mosquitto.url, {
        clientId: workerClientId('w-a'),
        username: 'w-a',
        password: 'guess',
      }),
    ).toBeGreaterThanOrEqual(4);
    // Re-provisioning replaces the password.
    const fresh = credentials.issue('w-a');
    await dynsec.provision('w-a', fresh);
    track(await connectWorker(mosquitto.url, 'w-a', fresh));
  });

  it('lets the worker act only as itself', async () => {
    const credential = credentials.issue('w-b');
    await dynsec.provision('w-b', credential);
    const worker = track(await connectWorker(mosquitto.url, 'w-b', credential));
    expect(
      await granted(worker, [
        topics.tasks('w-b'),
        topics.control('w-b'),
        topics.tasks('w-a'),
        topics.allStatus(),
        '#',
      ]),
    ).toEqual([1, 1, 128, 128, 128]);
    const seen = collect(worker);
    await master.publishAsync(topics.tasks('w-a'), 'for a', { qos: 1 });
    await master.publishAsync(topics.tasks('w-b'), 'for b', { qos: 1 });
    await waitFor(() => seen.includes(`${topics.tasks('w-b')} for b`), { what: 'own assignment' });
    expect(seen).toEqual([`${topics.tasks('w-b')} for b`]);

    // Mosquitto drops a forbidden publish silently; one client's messages stay in order.
    await worker.publishAsync(topics.status('w-a'), 'forged-by-b', { qos: 1, retain: true });
    await worker.publishAsync(topics.tasks('w-a'), 'forged-by-b', { qos: 1 });
    await worker.publishAsync(topics.log('master'), 'forged-by-b', { qos: 1 });
    await worker.publishAsync(topics.heartbeat('w-b'), 'marker-b', { qos: 1 });
    await waitFor(() => masterSaw.includes(`${topics.heartbeat('w-b')} marker-b`), {
      what: 'own heartbeat',
    });
    expect(masterSaw.filter((s) => s.includes('forged-by-b'))).toEqual([]);
  });

  it('lets anonymous clients read logs and nothing else', async () => {
    const anon = track(await connect(mosquitto.url, { clientId: 'curious' }));
    expect(
      await granted(anon, ['#', topics.tasks('w-b'), topics.allStatus(), topics.allLogs()]),
    ).toEqual([128, 128, 128, 1]);
    const seen = collect(anon);
    await master.publishAsync(topics.log('master'), 'hello observers', { qos: 1 });
    await waitFor(() => seen.includes(`${topics.log('master')} hello observers`), {
      what: 'log line',
    });
  });

  it('disconnects a revoked worker and refuses it; a fresh credential works again', async () => {
    const credential = credentials.issue('w-c');
    await dynsec.provision('w-c', credential);
    const worker = await connectWorker(mosquitto.url, 'w-c', credential);
    worker.on('error', () => undefined);
    const closed = new Promise((resolve) => worker.once('close', () => resolve(undefined)));
    await credentials.revoke('w-c');
    await closed;
    worker.end(true);
    expect(
      await connectRefused(mosquitto.url, {
        clientId: workerClientId('w-c'),
        username: 'w-c',
        password: credential,
      }),
    ).toBeGreaterThanOrEqual(4);
    const fresh = credentials.issue('w-c');
    await dynsec.provision('w-c', fresh);
    track(await connectWorker(mosquitto.url, 'w-c', fresh));
  });
});
