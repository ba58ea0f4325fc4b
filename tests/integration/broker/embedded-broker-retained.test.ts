/**
 * Retained messages on the embedded broker with many retained topics: a
 * SUBSCRIBE of exact topics that hold nothing skips aedes' scan of every
 * retained topic, and everything a subscriber must get still comes.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitConnected } from '../../../common/mqtt.ts';
import {
  type EmbeddedBroker,
  startEmbeddedBroker,
} from '../../../master/src/broker/embedded-broker.ts';
import type { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import { createTopics, MASTER_MQTT_USERNAME } from '../../../proto/src/topics.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { testLogger } from '../master/support.ts';
import { collect, connectWorker, openTestCredentials } from './support.ts';

const topics = createTopics();
const MASTER_PASSWORD = 'a-password-made-for-this-run';
const STATUSES = 2_000;

describe('embedded broker: retained messages with many workers', () => {
  let credentials: WorkerCredentials;
  let removeCredentials: () => Promise<void>;
  let broker: EmbeddedBroker;
  let master: MqttClient;
  const opened: MqttClient[] = [];

  beforeAll(async () => {
    ({ credentials, remove: removeCredentials } = await openTestCredentials());
    broker = await startEmbeddedBroker({
      port: 0,
      host: '127.0.0.1',
      topics,
      log: testLogger('master').logger,
      credentials,
      master: { username: MASTER_MQTT_USERNAME, password: MASTER_PASSWORD },
      maxPacketBytes: 64 * 1024,
      maxRetained: STATUSES + 10,
    });
    master = broker.connectLocal({
      clientId: 'flota-master-test',
      username: MASTER_MQTT_USERNAME,
      password: MASTER_PASSWORD,
      reconnectPeriod: 0,
    });
    await waitConnected(master, 'in-process', 5_000);
    await Promise.all(
      Array.from({ length: STATUSES }, (_, i) =>
        master.publishAsync(topics.status(`w-${i}`), `{"n":${i}}`, { qos: 1, retain: true }),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all(opened.map((c) => c.endAsync(true)));
    await master?.endAsync(true);
    await broker?.close();
    await removeCredentials?.();
  });

  it('sends an exact topic its retained message, and a wildcard all of them', async () => {
    const seen = collect(master);
    await master.subscribeAsync(topics.status('w-7'), { qos: 1 });
    await waitFor(() => seen.includes(`${topics.status('w-7')} {"n":7}`), {
      what: 'the retained status of w-7',
    });
    await master.unsubscribeAsync(topics.status('w-7'));
    await master.subscribeAsync(topics.allStatus(), { qos: 1 });
    await waitFor(() => seen.length >= STATUSES + 1, { what: 'every retained status' });
  });

  it("gives a worker its own retained control message, and nobody else's", async () => {
    await master.publishAsync(topics.control('w-1'), '{"kept":1}', { qos: 1, retain: true });
    const w1 = await connectWorker(broker.url, 'w-1', credentials.issue('w-1'));
    const w2 = await connectWorker(broker.url, 'w-2', credentials.issue('w-2'));
    opened.push(w1, w2);
    const seen1 = collect(w1);
    const seen2 = collect(w2);
    await w2.subscribeAsync([topics.tasks('w-2'), topics.control('w-2')], { qos: 1 });
    await w1.subscribeAsync([topics.tasks('w-1'), topics.control('w-1')], { qos: 1 });
    await waitFor(() => seen1.includes(`${topics.control('w-1')} {"kept":1}`), {
      what: "w-1's retained control message",
    });
    expect(seen2).toEqual([]);
  });
});
