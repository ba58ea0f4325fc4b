/** Shared by the broker security suites: clients that expect a login, a refusal or a cut. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import { workerClientId } from '../../../proto/src/topics.ts';

/** Worker credentials of a fresh installation (its own data dir and secret). */
export async function openTestCredentials(): Promise<{
  credentials: WorkerCredentials;
  remove(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'flota-broker-'));
  const credentials = await WorkerCredentials.open({ dataDir: dir, secret: 'b'.repeat(48) });
  return { credentials, remove: () => rm(dir, { recursive: true, force: true }) };
}

const once_ = { reconnectPeriod: 0, connectTimeout: 5_000 } satisfies IClientOptions;

/** Connects and resolves once the broker accepted; rejects with the refusal otherwise. */
export function connect(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { ...once_, ...options });
}

/** A worker's login: username = its id, password = its credential, its own client id. */
export function connectWorker(
  url: string,
  workerId: string,
  credential: string,
  options: IClientOptions = {},
): Promise<MqttClient> {
  return connect(url, {
    clientId: workerClientId(workerId),
    username: workerId,
    password: credential,
    ...options,
  });
}

/** Resolves with the CONNACK return code of a refused login; rejects if the broker accepts it. */
export function connectRefused(url: string, options: IClientOptions = {}): Promise<number> {
  const client = mqtt.connect(url, { ...once_, ...options });
  return new Promise<number>((resolve, reject) => {
    client.once('connect', () => {
      client.end(true);
      reject(new Error(`the broker accepted ${JSON.stringify(options.clientId ?? '')}`));
    });
    client.once('error', (err) => {
      client.end(true);
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number') resolve(code);
      else reject(err);
    });
  });
}

/** Publishes and resolves once the broker has closed the connection over it. */
export async function publishCut(
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  options: { retain?: boolean; qos?: 0 | 1 } = {},
): Promise<void> {
  // A cut may surface as ECONNRESET first: that is the expected outcome here.
  client.on('error', () => undefined);
  const closed = new Promise((resolve) => client.once('close', () => resolve(undefined)));
  client.publish(topic, payload, { qos: options.qos ?? 1, retain: options.retain ?? false });
  await closed;
  client.end(true);
}

/** The QoS the broker granted to each filter (128: refused). */
export function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  // mqtt.js rejects a SUBACK holding any refusal; the grants are then on the error's packet.
  return client.subscribeAsync(filters, { qos: 1 }).then(
    (grants) => filters.map((f) => grants.find((g) => g.topic === f)?.qos ?? -1),
    (err: { packet?: { granted?: number[] } }) => {
      if (!err.packet?.granted) throw err;
      return err.packet.granted;
    },
  );
}

/** Collects every message a client receives, as `topic payload`. */
export function collect(client: MqttClient): string[] {
  const seen: string[] = [];
  client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
  return seen;
}
