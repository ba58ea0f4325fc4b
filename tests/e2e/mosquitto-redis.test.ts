/**
 * The "many machines" shape on one machine: Mosquitto and Redis as their own
 * servers, `flota master` and two `flota worker` processes joined only by
 * MQTT_URL, QUEUE_URL and MASTER_GRPC.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { logLineSchema } from '../../proto/src/schemas/log.ts';
import { type MosquittoServer, startMosquitto } from '../helpers/mosquitto-server.ts';
import { randomName } from '../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../helpers/redis-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { listWorkers, submitTask, waitForCompleted } from './support/api.ts';
import { SHOW_LOGS } from './support/config.ts';
import { dumpOutput, type FlotaProcess } from './support/flota-process.ts';
import { tapTopic } from './support/log-tap.ts';
import { type MasterProcess, startMasterProcess, startWorkerProcess } from './support/system.ts';

const WORKER_IDS = ['w-1', 'w-2'];

let redis: RedisServer | undefined;
let mosquitto: MosquittoServer | undefined;
let dataDir: string | undefined;
let master: MasterProcess | undefined;
const workers = new Map<string, FlotaProcess>();
const all = () => [master?.master, ...workers.values()];

beforeAll(async () => {
  [redis, mosquitto] = await Promise.all([startRedis(), startMosquitto()]);
  // Unused with QUEUE_URL set, but keeps a stray embedded store out of the repo.
  dataDir = await mkdtemp(join(tmpdir(), 'flota-e2e-mr-'));
  master = await startMasterProcess({
    MQTT_URL: mosquitto.url,
    QUEUE_URL: redis.url,
    QUEUE_NAMESPACE: randomName('e2e'),
    FLOTA_DATA_DIR: dataDir,
  });
  const workerEnv = {
    MQTT_URL: mosquitto.url,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    ECHO_DELAY_MS: '10',
  };
  const started = await Promise.all(
    WORKER_IDS.map((id) => startWorkerProcess(id, workerEnv, master as MasterProcess)),
  );
  for (const [i, id] of WORKER_IDS.entries()) workers.set(id, started[i] as FlotaProcess);
});

beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput(all()));
});

afterAll(async () => {
  await Promise.all([...workers.values()].map((w) => w.stop('SIGTERM')));
  await master?.master.stop('SIGTERM');
  if (SHOW_LOGS) dumpOutput(all());
  await Promise.all([redis?.stop(), mosquitto?.stop()]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const baseUrl = () => (master as MasterProcess).baseUrl;

async function workerStates(): Promise<Record<string, string>> {
  const list = await listWorkers(baseUrl());
  return Object.fromEntries(list.map((w) => [w.id, w.state]));
}

describe('flota master + 2 flota workers over Mosquitto and Redis', () => {
  it('registers both workers with the master', async () => {
    await waitFor(
      async () => {
        const states = await workerStates();
        return WORKER_IDS.every((id) => states[id] === 'online');
      },
      { timeoutMs: 20_000, what: 'w-1 and w-2 online' },
    );
    const list = await listWorkers(baseUrl());
    for (const w of list) expect(w).toMatchObject({ kind: 'cpu', models: ['echo'], slots: 2 });
  });

  it('runs tasks on both workers, with logs visible to mosquitto_sub', async () => {
    const tap = await tapTopic((mosquitto as MosquittoServer).port, 'flota/v1/logs/#');
    try {
      const prompts = [1, 2, 3, 4].map((n) => `Distributed question ${n}, answered by the fleet`);
      const ids = await Promise.all(prompts.map((p) => submitTask(baseUrl(), p)));
      const views = await Promise.all(ids.map((id) => waitForCompleted(baseUrl(), id)));
      for (const [i, view] of views.entries()) expect(view.result).toBe(`echo: ${prompts[i]}`);
      expect(new Set(views.map((v) => v.workerId))).toEqual(new Set(WORKER_IDS));

      const [first] = ids;
      const mentions = (source: string) =>
        tap.messages.some(
          (m) => m.topic === `flota/v1/logs/${source}` && m.payload.includes(first ?? '?'),
        );
      await waitFor(() => mentions('master') && WORKER_IDS.some(mentions), {
        what: `log lines about ${first} from the master and a worker`,
      });
      for (const m of tap.messages) {
        const line = logLineSchema.parse(JSON.parse(m.payload));
        expect(m.topic).toBe(`flota/v1/logs/${line.source}`);
      }
    } finally {
      await tap.stop();
    }
  });

  it('lists a SIGTERMed worker offline while the other keeps serving', async () => {
    const stopped = workers.get('w-1') as FlotaProcess;
    const exit = await stopped.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    await waitFor(async () => (await workerStates())['w-1'] === 'offline', {
      timeoutMs: 15_000,
      what: 'the master to list w-1 offline',
    });
    expect((await workerStates())['w-2']).toBe('online');

    const ids = await Promise.all(
      [1, 2, 3].map((n) => submitTask(baseUrl(), `After the stop, question ${n}`)),
    );
    const views = await Promise.all(ids.map((id) => waitForCompleted(baseUrl(), id)));
    for (const view of views) expect(view.workerId).toBe('w-2');
  });

  it('stops the master and the remaining worker cleanly', async () => {
    const [w2, m] = [workers.get('w-2') as FlotaProcess, (master as MasterProcess).master];
    await expect(w2.stop('SIGTERM')).resolves.toEqual({ code: 0, signal: null });
    await expect(m.stop('SIGTERM')).resolves.toEqual({ code: 0, signal: null });
  });
});
