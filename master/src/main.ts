/**
 * The master's only wiring place: builds every module from the config and
 * hands each its dependencies. Shutdown runs in a fixed order.
 */

import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { type Clock, systemClock } from '../../common/clock.ts';
import { createLogger, type FlotaLogger } from '../../common/logger.ts';
import { connectMqtt, waitConnected } from '../../common/mqtt.ts';
import type { MasterReady } from '../../proto/src/ipc.ts';
import { queueKeyOfTaskId } from '../../proto/src/queues.ts';
import { createTopics } from '../../proto/src/topics.ts';
import { type EmbeddedBroker, startEmbeddedBroker } from './broker/embedded-broker.ts';
import { clientPublisher, type Publisher } from './broker/publisher.ts';
import { ResultCache } from './cache/result-cache.ts';
import { apiTokensOf, loadMasterConfig, type MasterConfig } from './config.ts';
import { Adopter } from './dispatch/adoption.ts';
import { DeadlineSweeper } from './dispatch/deadlines.ts';
import { Dispatcher, LOCK_DURATION_MS } from './dispatch/dispatcher.ts';
import { LeaseTable } from './dispatch/leases.ts';
import { createPolicy } from './dispatch/policies/index.ts';
import { Stopper } from './dispatch/stopper.ts';
import { startGrpcServer } from './grpc/server.ts';
import { createHttpApp } from './http/app.ts';
import { ApiAuth } from './http/auth.ts';
import { MasterMetrics } from './metrics/master-metrics.ts';
import { Outboxes } from './realtime/outbox.ts';
import { attachSocketServer } from './realtime/socket-server.ts';
import { WorkerRegistry } from './registry/registry.ts';
import { ResultHandler } from './results/result-handler.ts';
import { openQueueStore } from './store/index.ts';
import { SecretVault } from './tasks/secret-vault.ts';
import { SubmissionKeys } from './tasks/submission-keys.ts';
import { TaskEvents } from './tasks/task-events.ts';
import { TaskQueues } from './tasks/task-queues.ts';
import { TaskService } from './tasks/task-service.ts';

export interface MasterHandle {
  /** Where the chat UI and REST API answer, e.g. http://127.0.0.1:8080 */
  httpUrl: string;
  grpcPort: number;
  /** The broker workers should use (the embedded one, or MQTT_URL). */
  mqttUrl: string;
  close(): Promise<void>;
}

export interface MasterDeps {
  logger?: FlotaLogger;
  clock?: Clock;
}

/** Longest wait for one shutdown step (closing the store, the broker link, …). */
const SHUTDOWN_STEP_MS = 3_000;

const localHost = (host: string) => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);

export async function startMaster(
  config: MasterConfig,
  deps: MasterDeps = {},
): Promise<MasterHandle> {
  const flotaLogger = deps.logger ?? createLogger({ source: 'master', level: config.LOG_LEVEL });
  const log = flotaLogger.logger;
  const clock = deps.clock ?? systemClock;
  const topics = createTopics(config.MQTT_PREFIX);
  const closers: Array<() => Promise<void> | void> = [];
  // Each step is bounded: with the store or broker already gone, a close could wait forever.
  const close = async () => {
    for (const step of closers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = clock.setTimeout(() => resolve('late'), SHUTDOWN_STEP_MS);
      });
      try {
        const outcome = await Promise.race([Promise.resolve().then(step), late]);
        if (outcome === 'late') log.warn({ ms: SHUTDOWN_STEP_MS }, 'shutdown step timed out');
      } catch (err) {
        log.warn({ err }, 'shutdown step failed');
      } finally {
        clock.clearTimeout(timer as NodeJS.Timeout);
      }
    }
  };

  try {
    let broker: EmbeddedBroker | undefined;
    if (!config.MQTT_URL) {
      broker = await startEmbeddedBroker({
        port: config.MQTT_PORT,
        host: config.HOST,
        topics,
        log,
      });
      closers.push(() => broker?.close());
    }
    const mqttUrl = config.MQTT_URL ?? (broker as EmbeddedBroker).url;
    const mqtt = connectMqtt(mqttUrl, {
      clientId: `flota-master-${randomUUID().slice(0, 8)}`,
      username: config.MQTT_USERNAME,
      password: config.MQTT_PASSWORD,
    });
    closers.push(() => mqtt.endAsync());
    mqtt.on('error', (err) => log.warn({ err: err.message }, 'mqtt error'));
    await waitConnected(mqtt, mqttUrl);
    const publisher: Publisher = broker ?? clientPublisher(mqtt);
    const logTopic = topics.log('master');
    flotaLogger.attachPublisher(
      (line) => void publisher.publish(logTopic, line, 0).catch(() => undefined),
    );
    closers.push(() => flotaLogger.attachPublisher(undefined));

    const store = await openQueueStore({
      url: config.QUEUE_URL,
      dataDir: resolve(config.FLOTA_DATA_DIR),
      namespace: config.QUEUE_NAMESPACE,
      log,
    });
    closers.push(() => store.close());

    const registry = new WorkerRegistry({ mqtt, topics, log, clock });
    await registry.start();
    closers.push(() => registry.stop());

    const events = new TaskEvents();
    const leases = new LeaseTable();
    const vault = new SecretVault();
    const queues = new TaskQueues(store);
    const policy = createPolicy(config.DISPATCH_POLICY);
    // What most task modules share; each takes the parts it declares.
    const core = { leases, registry, queues, events, vault, publisher, topics, clock, log };
    // The stopper wakes a lane; the dispatcher needs the stopper: late-bound through this holder.
    let dispatcherRef: Dispatcher | undefined;
    const stopper = new Stopper({
      ...core,
      reap: (taskId) => {
        const key = queueKeyOfTaskId(taskId);
        if (key) dispatcherRef?.lane(key).reap();
      },
    });
    const dispatcher = new Dispatcher({
      ...core,
      store,
      policy,
      stopper,
      maxStalls: config.TASK_ATTEMPTS,
    });
    dispatcherRef = dispatcher;
    dispatcher.start();
    closers.push(() => dispatcher.close());
    const adopter = new Adopter({ ...core, stopper, lockDurationMs: LOCK_DURATION_MS });
    const onActive = adopter.onActive.bind(adopter);
    registry.on('active', onActive);
    closers.push(() => {
      registry.off('active', onActive);
    });
    const deadlines = new DeadlineSweeper({
      ...core,
      stopper,
      laneKeys: () => dispatcher.laneKeys(),
      requeue: (lease, why) => dispatcher.requeue(lease, why),
      reap: (key) => dispatcher.lane(key).reap(),
    });
    deadlines.start();
    closers.push(() => deadlines.stop());
    const cache = new ResultCache({ kv: store.kv, ttlMs: config.CACHE_TTL_S * 1000, clock, log });
    const results = new ResultHandler({ ...core, cache, policy, dispatcher, adopter });
    const tasks = new TaskService({
      ...core,
      cache,
      dispatcher,
      canceller: stopper,
      defaults: { timeoutMs: config.TASK_TIMEOUT_MS, attempts: config.TASK_ATTEMPTS },
      orderedStore: store.kind === 'redis',
      submissionKeys: new SubmissionKeys(store.kv, log),
    });
    const outboxes = new Outboxes(clock);

    const grpcServer = await startGrpcServer({
      host: config.HOST,
      port: config.GRPC_PORT,
      results,
      log,
      workerToken: config.WORKER_TOKEN,
    });
    closers.push(() => grpcServer.close());

    const metrics = new MasterMetrics({ events, registry, tasks, results, cache });
    const auth = new ApiAuth(apiTokensOf(config));
    closers.push(() => metrics.close());
    const app = createHttpApp({
      auth,
      tasks,
      registry,
      metrics,
      log,
      readiness: async () => ({
        store: await store.ping(),
        broker: mqtt.connected,
        grpc: grpcServer.serving(),
      }),
    });
    const httpServer = createServer(app);
    const realtime = attachSocketServer({
      auth,
      httpServer,
      tasks,
      events,
      outboxes,
      registry,
      clock,
      log,
    });
    httpServer.listen(config.PORT, config.HOST);
    await Promise.race([
      once(httpServer, 'listening'),
      once(httpServer, 'error').then(([err]) => {
        throw new Error(
          `HTTP port ${config.PORT} unavailable (set PORT): ${(err as Error).message}`,
        );
      }),
    ]);
    // Stop intake first: closing Socket.IO also closes the HTTP server.
    closers.push(() => realtime.close());
    const httpPort = (httpServer.address() as AddressInfo).port;
    const httpUrl = `http://${localHost(config.HOST)}:${httpPort}`;
    log.info(
      { httpUrl, grpcPort: grpcServer.port, mqttUrl, store: store.describe() },
      'master ready',
    );

    let closing: Promise<void> | undefined;
    return {
      httpUrl,
      grpcPort: grpcServer.port,
      mqttUrl,
      close: () => {
        closing ??= close().then(() => log.info('master stopped'));
        return closing;
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * `flota master`: start from the environment and stop cleanly on SIGINT/SIGTERM.
 * Under `flota up` (an IPC channel to the parent) it reports where it listens,
 * and shuts down if that parent goes away.
 */
export async function runMasterFromEnv(): Promise<MasterHandle> {
  const config = loadMasterConfig();
  const master = await startMaster(config);
  const stop = () => void master.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (process.send) {
    process.once('disconnect', stop);
    const ready: MasterReady = {
      type: 'flota:master-ready',
      httpUrl: master.httpUrl,
      grpcPort: master.grpcPort,
      mqttUrl: master.mqttUrl,
    };
    process.send(ready);
  }
  return master;
}
