/**
 * What the kit runs around the worker under test: a queue store, the master's
 * embedded broker (with its logins and rights, run by the kit so that its
 * probe can log in as the master), a master started in-process, the probe,
 * and the gRPC relay the worker dials. Broker and relay listen on `host`
 * (loopback unless `--attach --host` says otherwise); the master and its
 * store stay on loopback, reached by the kit alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlotaLogger } from '../../common/logger.ts';
import {
  type EmbeddedBroker,
  type MqttRefusal,
  startEmbeddedBroker,
} from '../../master/src/broker/embedded-broker.ts';
import { loadMasterConfig } from '../../master/src/config.ts';
import { type MasterHandle, startMaster } from '../../master/src/main.ts';
import { WorkerCredentials } from '../../master/src/security/worker-credentials.ts';
import {
  createTopics,
  DEFAULT_TOPIC_PREFIX,
  MASTER_MQTT_USERNAME,
} from '../../proto/src/topics.ts';
import { MasterRest } from './master-rest.ts';
import type { ConformanceOptions } from './options.ts';
import { Probe } from './probe.ts';
import { ReportTap } from './report-tap.ts';
import { type KitStore, openKitStore } from './store.ts';

export interface KitServers {
  /** MQTT_URL the worker gets. */
  brokerUrl: string;
  /** MASTER_GRPC the worker gets: the relay, `host:port`. */
  relayAddress: string;
  credentials: WorkerCredentials;
  refusals: MqttRefusal[];
  probe: Probe;
  tap: ReportTap;
  rest: MasterRest;
  restartMaster(): Promise<void>;
  restartBroker(): Promise<void>;
}

/** `host:port`, with an IPv6 address in brackets. */
const hostPort = (host: string, port: number) =>
  `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Starts the kit's servers; each one's stop goes on `closers` as soon as it runs. */
export async function startKitServers(
  options: ConformanceOptions,
  host: string,
  logger: FlotaLogger,
  closers: Array<() => Promise<void>>,
): Promise<KitServers> {
  const log = logger.logger;
  const dataDir = await mkdtemp(join(tmpdir(), 'flota-conformance-'));
  closers.push(() => rm(dataDir, { recursive: true, force: true }));
  const store: KitStore = await openKitStore(options.queueUrl, log);
  closers.push(() => store.stop());
  // The master reads the secret this makes in dataDir, so both accept the same credentials.
  const credentials = await WorkerCredentials.open({ dataDir });
  const topics = createTopics(DEFAULT_TOPIC_PREFIX);
  const masterPassword = randomBytes(24).toString('base64url');
  const bounds = loadMasterConfig({});
  const refusals: MqttRefusal[] = [];
  let probe: Probe | undefined;
  const startBroker = async (port: number) => {
    const started = await startEmbeddedBroker({
      port,
      host,
      topics,
      log,
      credentials,
      master: { username: MASTER_MQTT_USERNAME, password: masterPassword },
      maxPacketBytes: bounds.MQTT_MAX_PACKET_BYTES,
      maxRetained: bounds.MQTT_MAX_RETAINED,
    });
    started.onRefused((refusal) => {
      refusals.push(refusal);
      probe?.poke();
    });
    return started;
  };
  let broker: EmbeddedBroker = await startBroker(0);
  // The broker of now: a check may have replaced the first one.
  closers.push(() => broker.close());
  const namespace = `conformance_${randomBytes(6).toString('hex')}`;
  const masterConfig = (ports: { http: number; grpc: number }) =>
    loadMasterConfig({
      HOST: '127.0.0.1',
      PORT: String(ports.http),
      GRPC_PORT: String(ports.grpc),
      FLOTA_DATA_DIR: dataDir,
      MQTT_URL: broker.url,
      MQTT_USERNAME: MASTER_MQTT_USERNAME,
      MQTT_PASSWORD: masterPassword,
      RATE_LIMIT_RPM: '0',
      QUEUE_NAMESPACE: namespace,
      ...(store.url ? { QUEUE_URL: store.url } : {}),
    });
  const startKitMaster = (ports: { http: number; grpc: number }) =>
    startMaster(masterConfig(ports), { logger, notice: () => undefined });
  let master: MasterHandle = await startKitMaster({ http: 0, grpc: 0 });
  closers.push(() => master.close());
  const connected = await Probe.connect({
    url: broker.url,
    username: MASTER_MQTT_USERNAME,
    password: masterPassword,
    topics,
    log,
  });
  probe = connected;
  closers.push(() => connected.close());
  const tap = await ReportTap.start(hostPort(host, 0), `127.0.0.1:${master.grpcPort}`, log, () =>
    connected.poke(),
  );
  closers.push(() => tap.close());
  return {
    brokerUrl: broker.url,
    relayAddress: hostPort(host, tap.port),
    credentials,
    refusals,
    probe: connected,
    tap,
    rest: new MasterRest(master.httpUrl),
    async restartMaster() {
      // The same ports: the worker dials the relay, the relay and the checks dial these.
      const ports = { http: Number(new URL(master.httpUrl).port), grpc: master.grpcPort };
      await master.close();
      master = await startKitMaster(ports);
    },
    async restartBroker() {
      const { port } = broker;
      const logins = connected.logins;
      await broker.close();
      broker = await startBroker(port);
      await connected.reconnected(logins);
    },
  };
}
