/**
 * The kit's own installation and the worker under test, as the checks see
 * them: a master started in-process behind a broker the kit runs itself
 * (the master's embedded broker, with its logins and rights, so the kit's
 * probe can log in as the master), and the worker command as a child
 * process with the environment docs/PROTOCOL.md § Conformance lists.
 */

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FlotaError } from '../../common/errors.ts';
import type { FlotaLogger } from '../../common/logger.ts';
import {
  type EmbeddedBroker,
  type MqttRefusal,
  startEmbeddedBroker,
} from '../../master/src/broker/embedded-broker.ts';
import { loadMasterConfig } from '../../master/src/config.ts';
import { type MasterHandle, startMaster } from '../../master/src/main.ts';
import { WorkerCredentials } from '../../master/src/security/worker-credentials.ts';
import type { WorkerOnline } from '../../proto/src/schemas/worker.ts';
import {
  createTopics,
  DEFAULT_TOPIC_PREFIX,
  MASTER_MQTT_USERNAME,
} from '../../proto/src/topics.ts';
import { environment } from '../config.ts';
import { MasterRest } from './master-rest.ts';
import type { ConformanceOptions } from './options.ts';
import { Probe, type Seen } from './probe.ts';
import { ReportTap } from './report-tap.ts';
import { type KitStore, openKitStore } from './store.ts';
import { kitWorkerSettings, workerEnv } from './worker-env.ts';
import { WorkerProcess } from './worker-process.ts';

/** How long the worker may take from spawn to its first online record. */
const ONLINE_MS = 20_000;

export interface ConformanceContext {
  readonly options: ConformanceOptions;
  readonly workerId: string;
  readonly rest: MasterRest;
  readonly probe: Probe;
  /** Every chunk and result the worker sent, as it sent them. */
  readonly tap: ReportTap;
  readonly log: Logger;
  /** Refused broker logins, in order. */
  readonly refusals: MqttRefusal[];
  /** The worker under test now (a check may restart it). */
  worker(): WorkerProcess;
  /** Starts another process of the command with `workerId` and `token` (the bad-credential check). */
  spawnExtra(workerId: string, token: string): WorkerProcess;
  credentialFor(workerId: string): string;
  /** Starts the worker again after a check stopped it, and waits for its online record. */
  restartWorker(): Promise<void>;
  /** The first online record of `workerId` after `since`, or undefined after `ms`. */
  waitOnline(workerId: string, since: number, ms: number): Promise<Seen<WorkerOnline> | undefined>;
  /**
   * Stops the kit's master and starts a new one on the same store, broker,
   * data directory and ports (its lease table starts empty); resolves once
   * the new one serves.
   */
  restartMaster(): Promise<void>;
  /**
   * Closes the kit's broker (every connection drops, its retained records and
   * sessions are gone) and starts a new one on the same port; resolves once
   * the kit's probe has logged in again.
   */
  restartBroker(): Promise<void>;
}

export interface Installation extends ConformanceContext {
  /** The first start of the worker: resolves once it published its online record. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The worker under test did not publish its online record (it exited, or took too long). */
export class WorkerNotOnlineError extends FlotaError {
  constructor(message: string) {
    super('worker_not_online', message);
  }
}

/** What the kit runs around the worker: store, broker, master, probe and gRPC relay. */
interface KitServers {
  brokerUrl: string;
  credentials: WorkerCredentials;
  refusals: MqttRefusal[];
  probe: Probe;
  tap: ReportTap;
  rest: MasterRest;
  restartMaster(): Promise<void>;
  restartBroker(): Promise<void>;
}

/** Starts the kit's servers; each one's stop goes on `closers` as soon as it runs. */
async function startKitServers(
  options: ConformanceOptions,
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
      host: '127.0.0.1',
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
  const tap = await ReportTap.start(`127.0.0.1:${master.grpcPort}`, log, () => connected.poke());
  closers.push(() => tap.close());
  return {
    brokerUrl: broker.url,
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

export async function openInstallation(
  options: ConformanceOptions,
  logger: FlotaLogger,
): Promise<Installation> {
  const log = logger.logger;
  const closers: Array<() => Promise<void>> = [];
  const processes: WorkerProcess[] = [];
  let closed = false;
  const close = async () => {
    closed = true;
    await Promise.all(processes.map((p) => p.stop()));
    for (const step of closers.reverse()) await step().catch(() => undefined);
  };
  try {
    const servers = await startKitServers(options, logger, closers);
    const { brokerUrl, credentials, refusals, probe, tap, rest } = servers;
    const spawnWorker = (workerId: string, token: string) => {
      // A check that ran past its timeout must not start a worker the run no longer stops.
      if (closed) throw new WorkerNotOnlineError('the run is over');
      const child = new WorkerProcess(
        options.command,
        workerEnv(
          environment(),
          kitWorkerSettings(options, {
            mqttUrl: brokerUrl,
            grpcAddress: `127.0.0.1:${tap.port}`,
            workerId,
            token,
          }),
        ),
        log,
      );
      processes.push(child);
      return child;
    };
    const waitOnline = (workerId: string, since: number, ms: number) =>
      probe.until(
        () =>
          probe.statusesOf(workerId).find((s) => s.at >= since && s.value?.state === 'online') as
            | Seen<WorkerOnline>
            | undefined,
        ms,
      );
    const workerId = options.workerId;
    let current: WorkerProcess | undefined;
    const startCurrent = async () => {
      const since = Date.now();
      current = spawnWorker(workerId, credentials.issue(workerId));
      const online = await Promise.race([
        waitOnline(workerId, since, ONLINE_MS),
        current.exited.then(() => undefined),
      ]);
      if (!online) {
        const why = current.exit
          ? `it exited (${current.exit.signal ?? `code ${current.exit.code}`})`
          : `no online record within ${ONLINE_MS} ms`;
        throw new WorkerNotOnlineError(
          `the worker under test never came online: ${why}${current.output() ? `. Its last output:\n${current.output()}` : ''}`,
        );
      }
    };
    return {
      options,
      workerId,
      rest,
      probe,
      tap,
      log,
      refusals,
      worker: () => {
        if (!current) throw new Error('the worker under test was not started');
        return current;
      },
      spawnExtra: spawnWorker,
      credentialFor: (id) => credentials.issue(id),
      restartWorker: startCurrent,
      waitOnline,
      restartMaster: servers.restartMaster,
      restartBroker: servers.restartBroker,
      start: startCurrent,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
