/**
 * The same MQTT attacks on a Mosquitto with the dynamic-security plugin, as
 * the Swarm stack runs it: the master (a dynsec admin, MQTT_DYNSEC=true) makes
 * a broker login per worker credential it issues, and disables it on revoke.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OBSERVER_GROUP } from '../../master/src/broker/dynsec.ts';
import { createTopics, OBSERVER_MQTT_USERNAME } from '../../proto/src/topics.ts';
import type { WorkerHandle } from '../../worker/src/main.ts';
import { type MosquittoServer, startMosquitto } from '../helpers/mosquitto-server.ts';
import { startRedis } from '../helpers/redis-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../integration/master/support.ts';
import { closeQuietly, mqttConnect } from './support/attacker.ts';
import { mqttAttacks } from './support/mqtt-attacks.ts';

const ADMIN = { adminUsername: 'flota-admin', adminPassword: 'admin-password-for-the-tests' };
const OBSERVER = {
  username: OBSERVER_MQTT_USERNAME,
  password: 'observer-password-for-the-tests',
  clientId: 'flota-observer',
};
const run = promisify(execFile);

let mosquitto: MosquittoServer;
let redis: Awaited<ReturnType<typeof startRedis>>;
let master: Awaited<ReturnType<typeof startTestMaster>>;
const workers: WorkerHandle[] = [];

async function workerState(id: string): Promise<'online' | 'offline' | 'absent'> {
  const res = await api<{ workers: { id: string; state: 'online' | 'offline' }[] }>(
    master,
    '/api/workers',
  );
  return res.body.workers.find((w) => w.id === id)?.state ?? 'absent';
}

beforeAll(async () => {
  // As the stack runs it (deploy/mosquitto/mosquitto.conf): no anonymous logins, bounded packets.
  mosquitto = await startMosquitto({
    dynsec: ADMIN,
    extraConfig: 'allow_anonymous false\nmax_packet_size 262144',
  });
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    mqttUrl: mosquitto.url,
    env: {
      MQTT_USERNAME: ADMIN.adminUsername,
      MQTT_PASSWORD: ADMIN.adminPassword,
      MQTT_DYNSEC: 'true',
    },
  });
  // The stack's log follower: read-only, on a client id of its own (deploy/mosquitto/entrypoint.sh).
  const ctrl = [
    '-h',
    '127.0.0.1',
    '-p',
    String(mosquitto.port),
    '-u',
    ADMIN.adminUsername,
    '-P',
    ADMIN.adminPassword,
    'dynsec',
  ];
  await run('mosquitto_ctrl', [
    ...ctrl,
    'createClient',
    OBSERVER.username,
    '-p',
    OBSERVER.password,
    '-c',
    OBSERVER.clientId,
  ]);
  await run('mosquitto_ctrl', [...ctrl, 'addGroupClient', OBSERVER_GROUP, OBSERVER.username]);
  for (const id of ['mq-1', 'mq-2']) workers.push(await startTestWorker(master, { WORKER_ID: id }));
  await waitFor(async () => (await workerState('mq-2')) === 'online', {
    what: 'both workers online',
  });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await master?.close();
  await mosquitto?.stop();
  await redis?.stop();
});

describe('Mosquitto with dynamic security: MQTT', () => {
  mqttAttacks(() => ({
    mqttUrl: mosquitto.url,
    topics: createTopics(master.config.MQTT_PREFIX),
    victimId: 'mq-1',
    otherId: 'mq-2',
    issueCredential: (id) => master.issueWorkerCredential(id),
    roundTrip: async (prompt) => {
      const res = await api<{ id: string }>(master, '/api/tasks', { body: { prompt } });
      expect(res.status).toBe(202);
      const view = await waitFor(
        async () => {
          const got = await api<{ state: string; result?: string }>(
            master,
            `/api/tasks/${res.body.id}`,
          );
          return got.body.state === 'completed' ? got.body : undefined;
        },
        { what: `task ${res.body.id} completed` },
      );
      return view.result ?? '';
    },
    workerState,
    brokerPid: () => mosquitto.pid ?? 0,
    observer: OBSERVER,
  }));

  it('one worker credential never logs in as another worker', async () => {
    const credential = await master.issueWorkerCredential('mq-thief');
    const attempt = await mqttConnect(mosquitto.url, {
      clientId: 'flota-worker-mq-1',
      username: 'mq-1',
      password: credential,
    });
    expect(attempt.refused).toBeTruthy();
    await closeQuietly(attempt.client);
    expect(await workerState('mq-1')).toBe('online');
  });

  it('a revoked worker is disconnected by the broker and refused from then on', async () => {
    const id = 'mq-doomed';
    const doomed = await startTestWorker(master, { WORKER_ID: id });
    const credential = await master.issueWorkerCredential(id);
    await waitFor(async () => (await workerState(id)) === 'online', { what: `${id} online` });
    const res = await api(master, `/api/workers/${id}/revoke`, { body: {} });
    expect(res.status).toBe(200);
    await waitFor(async () => (await workerState(id)) === 'offline', {
      timeoutMs: 5_000,
      what: `${id} offline after its revocation`,
    });
    const again = await mqttConnect(mosquitto.url, {
      clientId: `flota-worker-${id}`,
      username: id,
      password: credential,
    });
    expect(again.refused).toBeTruthy();
    await closeQuietly(again.client);
    await doomed.close();
  });
});
