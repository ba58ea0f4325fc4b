/**
 * `flota master` as a process, its Redis and Mosquitto killed first (as a
 * terminal's Ctrl-C or a host going down does): SIGTERM still stops it with
 * exit code 0, because every shutdown step is bounded. Before that bound it
 * hung for good waiting on the dead broker and store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type MosquittoServer, startMosquitto } from '../helpers/mosquitto-server.ts';
import { randomName } from '../helpers/random-name.ts';
import { type RedisServer, startRedis } from '../helpers/redis-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { getJson, listWorkers } from './support/api.ts';
import { dumpOutput, type FlotaProcess } from './support/flota-process.ts';
import { type MasterProcess, startMasterProcess, startWorkerProcess } from './support/system.ts';

let redis: RedisServer | undefined;
let mosquitto: MosquittoServer | undefined;
let master: MasterProcess | undefined;
let worker: FlotaProcess | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await master?.master.stop('SIGKILL');
  await Promise.all([redis?.stop(), mosquitto?.stop()]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('stops on SIGTERM (exit 0) after its store and broker died', async ({ onTestFailed }) => {
  onTestFailed(() => dumpOutput([master?.master, worker]));
  [redis, mosquitto] = await Promise.all([startRedis(), startMosquitto()]);
  dataDir = await mkdtemp(join(tmpdir(), 'flota-e2e-down-'));
  master = await startMasterProcess({
    MQTT_URL: mosquitto.url,
    QUEUE_URL: redis.url,
    QUEUE_NAMESPACE: randomName('e2e'),
    FLOTA_DATA_DIR: dataDir,
  });
  worker = await startWorkerProcess(
    'w-down',
    { MQTT_URL: mosquitto.url, MASTER_GRPC: `127.0.0.1:${master.grpcPort}` },
    master,
  );
  const baseUrl = master.baseUrl;
  await waitFor(async () => ((await listWorkers(baseUrl)).length === 1 ? true : undefined), {
    what: 'the worker to register',
  });
  redis.kill();
  mosquitto.kill();
  // Once the master has noticed (its links are reconnecting), ask it to stop.
  await waitFor(
    async () => {
      const { status, body } = await getJson(`${baseUrl}/readyz`);
      const checks = (body as { checks?: { store: boolean; broker: boolean } }).checks;
      return status === 503 && !checks?.store && !checks?.broker ? true : undefined;
    },
    { what: 'the master to see its store and broker gone' },
  );
  await expect(master.master.stop('SIGTERM')).resolves.toEqual({ code: 0, signal: null });
});
