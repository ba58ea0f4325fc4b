/**
 * The embedded broker on a real socket: who may connect, publish, subscribe
 * and receive; bounds on packets and retained messages; revocation; mqtts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitConnected } from '../../../common/mqtt.ts';
import {
  type EmbeddedBroker,
  startEmbeddedBroker,
} from '../../../master/src/broker/embedded-broker.ts';
import type { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import { createTopics, MASTER_MQTT_USERNAME, workerClientId } from '../../../proto/src/topics.ts';
import { createTestCa, type TestCa } from '../../helpers/test-ca.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { testLogger } from '../master/support.ts';
import {
  collect,
  connect,
  connectRefused,
  connectWorker,
  granted,
  openTestCredentials,
  publishCut,
} from './support.ts';

const topics = createTopics();
const MASTER_PASSWORD = 'a-password-made-for-this-run';
const MAX_PACKET_BYTES = 64 * 1024;
const MAX_RETAINED = 16;

async function startBroker(
  credentials: WorkerCredentials,
  extra: Partial<Parameters<typeof startEmbeddedBroker>[0]> = {},
) {
  return startEmbeddedBroker({
    port: 0,
    host: '127.0.0.1',
    topics,
    log: testLogger('master').logger,
    credentials,
    master: { username: MASTER_MQTT_USERNAME, password: MASTER_PASSWORD },
    maxPacketBytes: MAX_PACKET_BYTES,
    maxRetained: MAX_RETAINED,
    ...extra,
  });
}

async function connectMaster(broker: EmbeddedBroker): Promise<MqttClient> {
  const client = broker.connectLocal({
    clientId: 'flota-master-test',
    username: MASTER_MQTT_USERNAME,
    password: MASTER_PASSWORD,
    reconnectPeriod: 0,
  });
  await waitConnected(client, 'in-process', 5_000);
  return client;
}

describe('embedded broker security', () => {
  let credentials: WorkerCredentials;
  let removeCredentials: () => Promise<void>;
  let broker: EmbeddedBroker;
  let master: MqttClient;
  /** What the master sees on every worker status, heartbeat and log topic. */
  let masterSaw: string[];
  const opened: MqttClient[] = [];
  const track = (client: MqttClient) => {
    opened.push(client);
    return client;
  };

  beforeAll(async () => {
    ({ credentials, remove: removeCredentials } = await openTestCredentials());
    broker = await startBroker(credentials);
    master = await connectMaster(broker);
    masterSaw = collect(master);
    await master.subscribeAsync([topics.allStatus(), topics.allHeartbeats(), topics.allLogs()], {
      qos: 1,
    });
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => {
    await master?.endAsync();
    await broker?.close();
    await removeCredentials?.();
  });

  it('lets the master in only with its password', async () => {
    expect(
      await connectRefused(broker.url, { username: MASTER_MQTT_USERNAME, password: 'guess' }),
    ).toBe(4);
    expect(master.connected).toBe(true);
  });

  it('lets an anonymous client read logs, and nothing else', async () => {
    const anon = track(await connect(broker.url, { clientId: 'curious' }));
    expect(
      await granted(anon, [
        '#',
        'flota/#',
        'flota/v1/#',
        '+/+/+/tasks',
        topics.tasks('w-a'),
        topics.control('w-a'),
        topics.allStatus(),
        topics.allLogs(),
      ]),
    ).toEqual([128, 128, 128, 128, 128, 128, 128, 1]);
    const seen = collect(anon);
    await broker.publish(topics.tasks('w-a'), '{"secret":"sk-1"}', 1);
    await broker.publish(topics.log('w-a'), '{"msg":"hello"}', 1);
    await waitFor(() => seen.includes(`${topics.log('w-a')} {"msg":"hello"}`), {
      what: 'log line',
    });
    expect(seen.filter((s) => s.includes('sk-1'))).toEqual([]);

    const forger = await connect(broker.url, { clientId: 'forger' });
    await publishCut(forger, topics.status('w-a'), '{"state":"online","id":"w-a"}', {
      retain: true,
    });
    const logger = await connect(broker.url, { clientId: 'forger-2' });
    await publishCut(logger, topics.log('master'), '{"msg":"forged"}');
    expect(
      masterSaw.filter((s) => s.includes('forged') || s.startsWith(topics.status('w-a'))),
    ).toEqual([]);
  });

  it('lets a worker act only as itself', async () => {
    const a = track(await connectWorker(broker.url, 'w-a', credentials.issue('w-a')));
    expect(
      await granted(a, [
        topics.tasks('w-a'),
        topics.control('w-a'),
        topics.tasks('w-b'),
        topics.allStatus(),
        '#',
      ]),
    ).toEqual([1, 1, 128, 128, 128]);
    const seen = collect(a);
    await broker.publish(topics.tasks('w-b'), 'for b', 1);
    await broker.publish(topics.tasks('w-a'), 'for a', 1);
    await waitFor(() => seen.includes(`${topics.tasks('w-a')} for a`), { what: 'own assignment' });
    expect(seen).toEqual([`${topics.tasks('w-a')} for a`]);

    await a.publishAsync(topics.heartbeat('w-a'), 'beat-a', { qos: 1 });
    await a.publishAsync(topics.log('w-a'), 'line-a', { qos: 1 });
    await waitFor(() => masterSaw.includes(`${topics.log('w-a')} line-a`), {
      what: 'own log line',
    });
    expect(masterSaw).toContain(`${topics.heartbeat('w-a')} beat-a`);

    for (const [topic, retain] of [
      [topics.status('w-b'), false],
      [topics.heartbeat('w-b'), false],
      [topics.log('w-b'), false],
      [topics.tasks('w-a'), false],
      [topics.control('w-b'), false],
      [topics.heartbeat('w-a'), true],
    ] as const) {
      const client = await connectWorker(broker.url, 'w-a', credentials.issue('w-a'));
      await publishCut(client, topic, 'forged-by-a', { retain });
    }
    expect(masterSaw.filter((s) => s.includes('forged-by-a'))).toEqual([]);
  });

  it("refuses a worker's client id without its credential, and the real worker stays online", async () => {
    const real = track(await connectWorker(broker.url, 'w-real', credentials.issue('w-real')));
    await real.subscribeAsync(topics.tasks('w-real'), { qos: 1 });
    const seen = collect(real);
    const clientId = workerClientId('w-real');
    expect(await connectRefused(broker.url, { clientId })).toBe(5);
    expect(
      await connectRefused(broker.url, {
        clientId,
        username: 'w-real',
        password: 'fwt1.w-real.1.x',
      }),
    ).toBe(4);
    expect(
      await connectRefused(broker.url, {
        clientId,
        username: 'w-other',
        password: credentials.issue('w-other'),
      }),
    ).toBe(5);
    expect(
      await connectRefused(broker.url, {
        clientId,
        username: 'w-real',
        password: credentials.issue('w-other'),
      }),
    ).toBe(4);
    expect(await connectRefused(broker.url, { clientId: 'flota-master-x' })).toBe(5);
    expect(real.connected).toBe(true);
    await broker.publish(topics.tasks('w-real'), 'still mine', 1);
    await waitFor(() => seen.includes(`${topics.tasks('w-real')} still mine`), {
      what: 'assignment after attacks',
    });
  });

  it('closes a connection at a packet over the limit, before its body arrives', async () => {
    const client = await connectWorker(broker.url, 'w-big', credentials.issue('w-big'));
    // A PUBLISH fixed header declaring 64 MiB, then a little of its body: never the rest.
    client.on('error', () => undefined);
    const socket = client.stream as unknown as net.Socket;
    socket.on('error', () => undefined);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const before = process.memoryUsage().arrayBuffers;
    socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x20]));
    socket.write(Buffer.alloc(16 * 1024, 0x61));
    await closed;
    client.end(true);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);

    const loud = await connectWorker(broker.url, 'w-big', credentials.issue('w-big'));
    await publishCut(loud, topics.log('w-big'), Buffer.alloc(MAX_PACKET_BYTES, 0x62));
    expect(masterSaw.filter((s) => s.startsWith(topics.log('w-big')))).toEqual([]);
  });

  it('keeps at most MQTT_MAX_RETAINED retained topics', async () => {
    // Earlier tests retained nothing: the forged status was refused.
    for (let i = 0; i < MAX_RETAINED; i++) {
      const id = `w-retain-${i}`;
      const c = await connectWorker(broker.url, id, credentials.issue(id));
      await c.publishAsync(topics.status(id), `{"n":${i}}`, { qos: 1, retain: true });
      await c.endAsync();
    }
    const extra = await connectWorker(broker.url, 'w-retain-x', credentials.issue('w-retain-x'), {
      will: {
        topic: topics.status('w-retain-x'),
        payload: Buffer.from('{"will":"x"}'),
        qos: 1,
        retain: true,
      },
    });
    await publishCut(extra, topics.status('w-retain-x'), '{"n":"x"}', { retain: true });
    // Its Last Will still tells the master it is gone, unretained.
    await waitFor(() => masterSaw.includes(`${topics.status('w-retain-x')} {"will":"x"}`), {
      what: 'Last Will past the retained bound',
    });
    expect(masterSaw).not.toContain(`${topics.status('w-retain-x')} {"n":"x"}`);
    // A kept topic may still be updated.
    const again = track(
      await connectWorker(broker.url, 'w-retain-0', credentials.issue('w-retain-0')),
    );
    await again.publishAsync(topics.status('w-retain-0'), '{"n":"again"}', {
      qos: 1,
      retain: true,
    });
    expect(again.connected).toBe(true);
  });

  it('cuts a revoked worker at once (its Last Will fires) and refuses its reconnects', async () => {
    const credential = credentials.issue('w-gone');
    const gone = await connectWorker(broker.url, 'w-gone', credential, {
      clean: false,
      will: {
        topic: topics.status('w-gone'),
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: true,
      },
    });
    const closed = new Promise((resolve) => gone.once('close', () => resolve(undefined)));
    const started = Date.now();
    await credentials.revoke('w-gone');
    await closed;
    gone.end(true);
    await waitFor(() => masterSaw.includes(`${topics.status('w-gone')} {"state":"offline"}`), {
      what: 'Last Will of the revoked worker',
      timeoutMs: 3_000,
    });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(
      await connectRefused(broker.url, {
        clientId: workerClientId('w-gone'),
        username: 'w-gone',
        password: credential,
      }),
    ).toBe(4);
    // A fresh credential, issued after the revocation, works again.
    track(await connectWorker(broker.url, 'w-gone', credentials.issue('w-gone')));
  });

  it('serves mosquitto_sub, anonymous, on the log topics', async () => {
    const sub = spawn('mosquitto_sub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(broker.port),
      '-t',
      'flota/v1/logs/#',
      '-C',
      '1',
    ]);
    let out = '';
    sub.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const exited = once(sub, 'exit');
    try {
      // mosquitto_sub subscribes a moment after it starts: publish until it has a line.
      await waitFor(
        async () => {
          await broker.publish(topics.log('w-cli'), '{"msg":"seen by mosquitto_sub"}', 0);
          return out.includes('seen by mosquitto_sub');
        },
        { what: 'mosquitto_sub output', intervalMs: 50 },
      );
      expect((await exited)[0]).toBe(0);
    } finally {
      sub.kill();
    }
  });
});

describe('embedded broker over mqtts with client certificates', () => {
  let ca: TestCa;
  let credentials: WorkerCredentials;
  let removeCredentials: () => Promise<void>;
  let broker: EmbeddedBroker;

  beforeAll(async () => {
    ca = await createTestCa();
    ({ credentials, remove: removeCredentials } = await openTestCredentials());
    broker = await startBroker(credentials, {
      tls: {
        cert: await ca.read(ca.server.cert),
        key: await ca.read(ca.server.key),
        ca: await ca.read(ca.caCert),
        requireClientCert: true,
      },
    });
  });
  afterAll(async () => {
    await broker?.close();
    await removeCredentials?.();
    await ca?.remove();
  });

  it('answers on mqtts, to a worker with its certificate and credential', async () => {
    expect(broker.url).toBe(`mqtts://127.0.0.1:${broker.port}`);
    const cert = ca.client('w-tls');
    const worker = await connectWorker(broker.url, 'w-tls', credentials.issue('w-tls'), {
      ca: await ca.read(ca.caCert),
      cert: await ca.read(cert.cert),
      key: await ca.read(cert.key),
    });
    expect(await granted(worker, [topics.tasks('w-tls')])).toEqual([1]);
    await worker.endAsync();
  });

  it('refuses a client without a certificate, and keeps the master on its in-process link', async () => {
    await expect(
      connect(broker.url, { ca: await ca.read(ca.caCert), connectTimeout: 3_000 }),
    ).rejects.toThrow();
    const master = await connectMaster(broker);
    expect(await granted(master, ['#'])).toEqual([1]);
    await master.endAsync();
  });

  it('refuses plain MQTT on the mqtts port', async () => {
    const socket = net.connect(broker.port, '127.0.0.1');
    socket.on('error', () => undefined);
    // A CONNECT in the clear is not a TLS ClientHello: the server hangs up.
    socket.write(Buffer.from([0x10, 0x0c, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 0]));
    await once(socket, 'close');
  });
});
