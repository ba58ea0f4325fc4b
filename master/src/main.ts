/**
 * The master's only wiring place: builds every module from the config and
 * hands each its dependencies. Shutdown runs in a fixed order.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { exitCodeOf, FlotaError, StartupError } from '../../common/errors.ts';
import { createLogger, type FlotaLogger } from '../../common/logger.ts';
import { connectMqtt, waitConnected } from '../../common/mqtt.ts';
import { redactUrl, urlWithoutCredentials } from '../../common/redact.ts';
import { finishesWithin } from '../../common/timeout.ts';
import {
  MASTER_STATUS_INTERVAL_MS,
  type MasterFailed,
  type MasterReady,
} from '../../proto/src/ipc.ts';
import type { MetricsSnapshot } from '../../proto/src/schemas/metrics.ts';
import { createTopics, MASTER_MQTT_USERNAME } from '../../proto/src/topics.ts';
import { AlertEngine } from './alerts/alert-engine.ts';
import { registerAlertMetrics } from './alerts/alert-metrics.ts';
import { alertThresholdsOf } from './alerts/rules.ts';
import { AlertWebhook } from './alerts/webhook.ts';
import { AuditLog } from './audit/audit-log.ts';
import { RefusalMeter } from './audit/refusal-meter.ts';
import { startDynsecProvisioner } from './broker/dynsec.ts';
import { type EmbeddedBroker, startEmbeddedBroker } from './broker/embedded-broker.ts';
import { waitForExternalBroker } from './broker/external-broker.ts';
import { clientPublisher, type Publisher } from './broker/publisher.ts';
import { ResultCache } from './cache/result-cache.ts';
import { apiTokensOf, configuredSecret, loadMasterConfig, type MasterConfig } from './config.ts';
import { ensureDataDir } from './data-dir.ts';
import { Adopter } from './dispatch/adoption.ts';
import { DeadlineSweeper } from './dispatch/deadlines.ts';
import { Dispatcher, LOCK_DURATION_MS } from './dispatch/dispatcher.ts';
import { LeaseTable } from './dispatch/leases.ts';
import { createPolicy } from './dispatch/policies/index.ts';
import { FleetControl } from './fleet/fleet-control.ts';
import { registerFleetMetrics } from './fleet/fleet-metrics.ts';
import { startGrpcServer } from './grpc/server.ts';
import { limitHeapGrowth } from './heap.ts';
import { HistoryRecorder } from './history/recorder.ts';
import { TaskHistory } from './history/task-history.ts';
import { createHttpApp } from './http/app.ts';
import { ApiAuth } from './http/auth.ts';
import { createRateLimiter } from './http/rate-limit.ts';
import { listen, listenError } from './listen.ts';
import { MasterMetrics } from './metrics/master-metrics.ts';
import { masterStatusOf } from './metrics/master-status.ts';
import { registerUsageMetrics } from './metrics/usage-metrics.ts';
import { PrometheusSeries } from './monitor/prometheus-series.ts';
import { SeriesRecorder } from './monitor/series.ts';
import { attachConsoleSocket } from './realtime/console-socket.ts';
import { Outboxes } from './realtime/outbox.ts';
import { attachSocketServer } from './realtime/socket-server.ts';
import { WorkerRegistry } from './registry/registry.ts';
import { ResultHandler } from './results/result-handler.ts';
import { prepareExposure } from './security/exposure.ts';
import type { TlsMaterial } from './security/tls.ts';
import { WorkerCredentials } from './security/worker-credentials.ts';
import { openQueueStore } from './store/index.ts';
import { TaskStore } from './store/task-store.ts';
import { TaskLifecycle } from './tasks/lifecycle.ts';
import { SecretVault } from './tasks/secret-vault.ts';
import { SubmissionKeys } from './tasks/submission-keys.ts';
import { TaskEvents, TaskRecordEvents } from './tasks/task-events.ts';
import { TaskService } from './tasks/task-service.ts';
import { TaskWatch } from './tasks/task-watch.ts';

export interface MasterHandle {
  /** Where the chat UI and REST API answer, e.g. http://127.0.0.1:8080 */
  httpUrl: string;
  grpcPort: number;
  /** The broker workers should use (the embedded one, or MQTT_URL). */
  mqttUrl: string;
  /** A fresh credential for a worker id (as `flota token worker` prints), provisioned on the broker. */
  issueWorkerCredential(workerId: string): Promise<string>;
  /** The admin token when this master generated one (non-loopback HOST without API_TOKENS). */
  adminToken?: string;
  /** The facts of `GET /api/metrics` (for `flota up`'s status line). */
  metrics(): Promise<MetricsSnapshot>;
  close(): Promise<void>;
}

export interface MasterDeps {
  logger?: FlotaLogger;
  /** Where a one-time notice for the operator goes (a generated admin token); stderr by default. */
  notice?: (text: string) => void;
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
  const topics = createTopics(config.MQTT_PREFIX);
  const closers: Array<() => Promise<void> | void> = [];
  // Each step is bounded: with the store or broker already gone, a close could wait forever.
  const close = async () => {
    for (const step of closers.reverse()) {
      try {
        const done = await finishesWithin(Promise.resolve().then(step), SHUTDOWN_STEP_MS);
        if (!done) log.warn({ ms: SHUTDOWN_STEP_MS }, 'shutdown step timed out');
      } catch (err) {
        log.warn({ err }, 'shutdown step failed');
      }
    }
  };

  try {
    const dataDir = resolve(config.FLOTA_DATA_DIR);
    // First: every store below keeps something here, and each would fail less clearly.
    await ensureDataDir(dataDir);
    const credentials = await WorkerCredentials.open({
      dataDir,
      secret: configuredSecret(config),
    });
    const tls: TlsMaterial | undefined =
      config.TLS_CERT && config.TLS_KEY
        ? {
            cert: config.TLS_CERT.pem,
            key: config.TLS_KEY.pem,
            ca: config.TLS_CA?.pem,
            requireClientCert: config.TLS_CLIENT_AUTH,
          }
        : undefined;
    const exposure = await prepareExposure({
      host: config.HOST,
      dataDir,
      tokens: apiTokensOf(config),
      tls: tls !== undefined,
    });
    for (const warning of exposure.warnings) log.warn(warning);
    if (exposure.generatedToken) {
      // Never logged: log lines reach the MQTT log topic.
      (deps.notice ?? ((text: string) => process.stderr.write(`${text}\n`)))(
        [
          `flota: HOST=${config.HOST} is reachable from the network and API_TOKENS is not set.`,
          `flota: generated an admin API token (shown once, kept in ${exposure.tokensFile}):`,
          `flota:   ${exposure.generatedToken}`,
        ].join('\n'),
      );
    }

    // The master's own broker login: on the embedded broker a password made for this run.
    const masterMqtt = config.MQTT_URL
      ? { username: config.MQTT_USERNAME, password: config.MQTT_PASSWORD }
      : { username: MASTER_MQTT_USERNAME, password: randomBytes(24).toString('base64url') };
    let broker: EmbeddedBroker | undefined;
    if (!config.MQTT_URL) {
      broker = await startEmbeddedBroker({
        port: config.MQTT_PORT,
        host: config.HOST,
        topics,
        log,
        credentials,
        master: { username: MASTER_MQTT_USERNAME, password: masterMqtt.password as string },
        tls,
        maxPacketBytes: config.MQTT_MAX_PACKET_BYTES,
        maxRetained: config.MQTT_MAX_RETAINED,
      });
      closers.push(() => broker?.close());
    }
    const mqttUrl = config.MQTT_URL ?? (broker as EmbeddedBroker).url;
    const masterLogin = {
      clientId: `flota-master-${randomUUID().slice(0, 8)}`,
      username: masterMqtt.username,
      password: masterMqtt.password,
    };
    // On the embedded broker the master's client connects in-process: no
    // socket, and no TLS certificate that names the HOST rather than loopback.
    const mqtt = broker
      ? broker.connectLocal(masterLogin)
      : connectMqtt(mqttUrl, { ...masterLogin, ca: config.TLS_CA?.pem });
    closers.push(() => mqtt.endAsync());
    mqtt.on('error', (err) => log.warn({ err: err.message }, 'mqtt error'));
    // An external broker started with the master may need a while: wait, saying so.
    await (broker ? waitConnected(mqtt, mqttUrl) : waitForExternalBroker(mqtt, mqttUrl, log));
    const publisher: Publisher = broker ?? clientPublisher(mqtt);
    const logTopic = topics.log('master');
    flotaLogger.attachPublisher(
      (line) => void publisher.publish(logTopic, line, 0).catch(() => undefined),
    );
    closers.push(() => flotaLogger.attachPublisher(undefined));

    // On a Mosquitto with dynamic security, each issued credential becomes a broker login.
    const dynsec = config.MQTT_DYNSEC
      ? await startDynsecProvisioner({ mqtt, topics, credentials, log })
      : undefined;
    closers.push(() => dynsec?.close());
    const issueWorkerCredential = async (workerId: string) => {
      const credential = credentials.issue(workerId);
      await dynsec?.provision(workerId, credential);
      return credential;
    };

    const store = await openQueueStore({
      url: config.QUEUE_URL,
      dataDir,
      namespace: config.QUEUE_NAMESPACE,
      log,
    });
    closers.push(() => store.close());

    const registry = new WorkerRegistry({ mqtt, topics, log });
    await registry.start();
    closers.push(() => registry.stop());

    const events = new TaskEvents();
    // The task history hears every submission, assignment, retry and end from the first task on.
    const records = new TaskRecordEvents();
    const recorder = new HistoryRecorder({
      history: store.history,
      events,
      records,
      retentionMs: config.HISTORY_RETENTION_HOURS * 3_600_000,
      log,
    });
    recorder.start();
    closers.push(() => recorder.close());
    const leases = new LeaseTable();
    const vault = new SecretVault();
    const taskStore = new TaskStore(store);
    const policy = createPolicy(config.DISPATCH_POLICY);
    const cache = new ResultCache({ kv: store.kv, ttlMs: config.CACHE_TTL_S * 1000, log });
    const lifecycle = new TaskLifecycle({
      store: taskStore,
      leases,
      registry,
      events,
      vault,
      publisher,
      topics,
      policy,
      cache,
      records,
      log,
    });
    lifecycle.start();
    closers.push(() => lifecycle.stop());
    const fleet = new FleetControl({ registry, lifecycle, leases, log });
    fleet.start();
    closers.push(() => fleet.stop());
    const dispatcher = new Dispatcher({
      store: taskStore,
      registry,
      policy,
      leases,
      lifecycle,
      log,
      maxStalls: config.TASK_ATTEMPTS,
      gate: fleet,
    });
    dispatcher.start();
    closers.push(() => dispatcher.close());
    const adopter = new Adopter({
      leases,
      registry,
      store: taskStore,
      lifecycle,
      log,
      lockDurationMs: LOCK_DURATION_MS,
    });
    const onActive = adopter.onActive.bind(adopter);
    registry.on('active', onActive);
    closers.push(() => {
      registry.off('active', onActive);
    });
    const deadlines = new DeadlineSweeper({
      leases,
      registry,
      store: taskStore,
      lifecycle,
      dispatcher,
      log,
    });
    deadlines.start();
    closers.push(() => deadlines.stop());
    const results = new ResultHandler({ leases, lifecycle, adopter, events, log });
    const tasks = new TaskService({
      store: taskStore,
      dispatcher,
      lifecycle,
      registry,
      leases,
      events,
      vault,
      log,
      cache,
      defaults: { timeoutMs: config.TASK_TIMEOUT_MS, attempts: config.TASK_ATTEMPTS },
      submissionKeys: new SubmissionKeys(store.kv, log),
      maxQueuedPerTenant: config.MAX_QUEUED_PER_TENANT,
      records,
    });
    const outboxes = new Outboxes();
    const audit = new AuditLog(store.audit, log);
    closers.push(() => audit.close());
    // Refusals (HTTP, gRPC, the embedded broker's MQTT logins) reach the trail, bounded per address.
    const refusals = new RefusalMeter((entry) => void audit.record(entry));
    closers.push(() => refusals.close());
    broker?.onRefused(({ from, clientId, username, reason }) =>
      refusals.refused({
        from,
        target: `MQTT login ${clientId}${username ? ` as ${username}` : ''}`.slice(0, 512),
        detail: `refused: ${reason}`.slice(0, 1_000),
      }),
    );

    const grpcServer = await startGrpcServer({
      host: config.HOST,
      port: config.GRPC_PORT,
      results,
      log,
      credentials,
      tls,
      enroll: { issue: issueWorkerCredential, isOnline: (id) => registry.isOnline(id) },
      onRefused: ({ method, workerId, from, reason }) =>
        refusals.refused({
          from,
          target: `gRPC ${method}${workerId ? ` as ${workerId}` : ''}`.slice(0, 512),
          detail: `UNAUTHENTICATED ${reason}`,
        }),
    });
    closers.push(() => grpcServer.close());

    const metrics = new MasterMetrics({ events, registry, tasks, results, cache });
    registerFleetMetrics(metrics.registry, fleet);
    const stopUsageMetrics = registerUsageMetrics(metrics.registry, {
      records,
      tenants: exposure.tokens.map((t) => t.tenant),
    });
    closers.push(stopUsageMetrics);
    const series = new SeriesRecorder({ events, registry, tasks, log });
    series.start();
    closers.push(() => series.close());
    const alerts = new AlertEngine({
      series,
      events,
      registry,
      thresholds: alertThresholdsOf(config),
      log,
    });
    alerts.start();
    closers.push(() => alerts.close());
    // loadMasterConfig refuses a webhook URL without its secret.
    const webhook =
      config.ALERT_WEBHOOK_URL && config.ALERT_WEBHOOK_SECRET
        ? new AlertWebhook({
            url: config.ALERT_WEBHOOK_URL,
            secret: config.ALERT_WEBHOOK_SECRET,
            fleet: config.FLEET_NAME ?? masterLogin.clientId,
            log,
          })
        : undefined;
    if (webhook) {
      const deliver = webhook.send.bind(webhook);
      alerts.on('change', deliver);
      closers.push(() => {
        alerts.off('change', deliver);
        webhook.close();
      });
    }
    registerAlertMetrics(metrics.registry, alerts, webhook);
    const seriesArchive = config.PROMETHEUS_URL
      ? new PrometheusSeries({ url: config.PROMETHEUS_URL })
      : undefined;
    const auth = new ApiAuth(exposure.tokens);
    closers.push(() => metrics.close());
    const limiter = createRateLimiter({
      rpm: config.RATE_LIMIT_RPM,
      backend: store.limiterBackend(),
      namespace: config.QUEUE_NAMESPACE,
      log,
    });
    closers.push(() => limiter.close());
    const watch = new TaskWatch(events);
    closers.push(() => watch.close());
    const app = createHttpApp({
      auth,
      tasks,
      watch,
      registry,
      metrics,
      log,
      limiter,
      corsOrigins: config.CORS_ORIGINS,
      commands: fleet,
      audit,
      refusals,
      history: new TaskHistory(store.history),
      series,
      seriesArchive,
      alerts,
      fleet: {
        issueCredential: issueWorkerCredential,
        issueJoinToken: (prefix) => credentials.issueJoin(prefix),
        revoke: (workerId) => credentials.revoke(workerId),
      },
      readiness: async () => ({
        store: await store.ping(),
        broker: mqtt.connected,
        grpc: grpcServer.serving(),
      }),
    });
    const httpServer = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key }, app)
      : createServer(app);
    const realtime = attachSocketServer({
      auth,
      limiter,
      corsOrigins: config.CORS_ORIGINS,
      httpServer,
      tasks,
      events,
      outboxes,
      registry,
      onRefused: (refusal) => refusals.refused(refusal),
      log,
    });
    // Mutual TLS is asked of workers on mqtts and gRPC; the HTTPS port asks browsers for none.
    if (!config.TLS_CLIENT_AUTH) broker?.serveWebSocket(httpServer);
    await listen(httpServer, config.PORT, config.HOST).catch(async (err: unknown) => {
      throw await listenError(
        { name: 'HTTP', variable: 'PORT', host: config.HOST, port: config.PORT },
        err,
      );
    });
    // Stop intake first: closing Socket.IO also closes the HTTP server.
    closers.push(() => realtime.close());
    const consoleSocket = attachConsoleSocket({
      io: realtime.io,
      auth,
      registry,
      fleet,
      series,
      alerts,
      events,
      onRefused: (refusal) => refusals.refused(refusal),
      log,
    });
    closers.push(() => consoleSocket.close());
    const httpPort = (httpServer.address() as AddressInfo).port;
    const httpUrl = `${tls ? 'https' : 'http'}://${localHost(config.HOST)}:${httpPort}`;
    log.info(
      { httpUrl, grpcPort: grpcServer.port, mqttUrl: redactUrl(mqttUrl), store: store.describe() },
      'master ready',
    );

    let closing: Promise<void> | undefined;
    return {
      httpUrl,
      grpcPort: grpcServer.port,
      mqttUrl,
      issueWorkerCredential,
      adminToken: exposure.tokens.find((t) => t.role === 'admin')?.token,
      metrics: () => metrics.snapshot(),
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
  limitHeapGrowth();
  let master: MasterHandle;
  try {
    master = await startMaster(loadMasterConfig());
  } catch (err) {
    // Under `flota up` the supervisor prints it: one line, whatever becomes of this process's output.
    if (process.send && err instanceof FlotaError) await reportStartupFailure(err);
    throw err;
  }
  let statusTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearInterval(statusTimer);
    void master.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (process.send) {
    process.once('disconnect', stop);
    const ready: MasterReady = {
      type: 'flota:master-ready',
      httpUrl: master.httpUrl,
      grpcPort: master.grpcPort,
      // Its workers log in with their own credentials, never with the master's.
      mqttUrl: urlWithoutCredentials(master.mqttUrl),
      adminToken: master.adminToken,
    };
    process.send(ready);
    // The supervisor's live status line. A snapshot that fails (the store briefly
    // away) or a parent that left only leave the line as it was: nothing to report.
    let measuring = false;
    statusTimer = setInterval(() => {
      if (measuring || !process.connected) return;
      measuring = true;
      master
        .metrics()
        .then((snapshot) => process.send?.(masterStatusOf(snapshot), undefined, {}, () => {}))
        .catch(() => {})
        .finally(() => {
          measuring = false;
        });
    }, MASTER_STATUS_INTERVAL_MS);
    statusTimer.unref();
  }
  return master;
}

/** Tells the parent why start-up failed, then exits (the message is its to print). */
async function reportStartupFailure(err: FlotaError): Promise<never> {
  const failed: MasterFailed = {
    type: 'flota:master-failed',
    code: err.code,
    message: err.message,
    hint: err instanceof StartupError ? err.hint : undefined,
  };
  // The callback comes once the message is handed to the channel (or the channel is gone).
  await new Promise<void>((resolve) => {
    if (process.send) process.send(failed, undefined, {}, () => resolve());
    else resolve();
  });
  process.exit(exitCodeOf(err));
}
