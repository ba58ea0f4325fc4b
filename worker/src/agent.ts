/**
 * The worker's lifecycle: register (retained online status) → listen
 * (assignments, control) → heartbeat → unregister (retained offline status).
 */
import os from 'node:os';
import { createLogger, type FlotaLogger, type Logger } from '../../common/logger.ts';
import { parseMqttJson } from '../../common/mqtt.ts';
import { settlesWithin } from '../../common/timeout.ts';
import {
  assignmentSchema,
  controlSchema,
  MAX_CONTINUATION_CHARS,
  MAX_CONVERSATION_CHARS,
} from '../../proto/src/schemas/task.ts';
import type { ControlAck, WorkerOnline } from '../../proto/src/schemas/worker.ts';
import { createTopics } from '../../proto/src/topics.ts';
import { requireCredential, type WorkerConfig } from './config.ts';
import { createControlHandler, type LiveSettings } from './controls.ts';
import { enrollWorker } from './enroll.ts';
import { grpcChannelCredentials } from './grpc-credentials.ts';
import { createResultReporter } from './grpc-link.ts';
import { startHeartbeat } from './heartbeat.ts';
import { createGpuSampler } from './metrics/gpu.ts';
import { createCpuSampler, memorySnapshot } from './metrics/system.ts';
import { isLocalModelProvider } from './models/local-models.ts';
import { openMqttLink } from './mqtt-link.ts';
import { createProvider, type Provider } from './providers/index.ts';
import { TaskRunner } from './task-runner.ts';
import { readVersion } from './version.ts';

export interface WorkerDeps {
  logger?: FlotaLogger;
  /** Replaces the provider the configuration names (tests, embedding). */
  provider?: Provider;
  /** How long enrollment (WORKER_JOIN_TOKEN) waits for a master that is away; default 120 s. */
  enrollWaitMs?: number;
}

export interface WorkerHandle {
  id: string;
  /** Stops intake, finishes or aborts in-flight work, unregisters, disconnects. Idempotent. */
  close(): Promise<void>;
  /** Resolves once the worker has closed, whoever asked (close() or a `shutdown` control). */
  readonly done: Promise<void>;
  /** True once the master asked for a restart: exit with RESTART_EXIT_CODE after `done`. */
  readonly restartRequested: boolean;
}

/**
 * Largest assignment payload the worker parses. A conversation holds at most
 * MAX_CONVERSATION_CHARS UTF-16 units, a continued answer MAX_CONTINUATION_CHARS,
 * and JSON spends at most 6 bytes on one (`\u001f`, a lone surrogate); 64 KiB
 * covers ids, key and field names. The general MQTT bound would drop a
 * legitimate long non-ASCII conversation.
 */
export const MAX_ASSIGNMENT_BYTES =
  6 * (MAX_CONVERSATION_CHARS + MAX_CONTINUATION_CHARS) + 64 * 1024;

/** How long startup waits for the broker before carrying on (the link keeps retrying). */
const FIRST_CONNECT_WAIT_MS = 10_000;
/** After aborting in-flight tasks, how long to wait for their results to go out. */
const ABORT_REPORT_WAIT_MS = 5_000;

export async function startWorkerAgent(
  config: WorkerConfig,
  deps: WorkerDeps = {},
): Promise<WorkerHandle> {
  const id = config.workerId;
  const source = requireCredential(config);
  const flotaLogger = deps.logger ?? createLogger({ source: id, level: config.logLevel });
  const log: Logger = flotaLogger.logger.child({ workerId: id });
  const topics = createTopics(config.mqttPrefix);
  const provider = deps.provider ?? (await createProvider(config, log));
  const local = isLocalModelProvider(provider) ? provider : undefined;
  const kind = config.kindSet || !local ? config.kind : local.detectedKind;
  const startedAt = Date.now();

  const channelCredentials = grpcChannelCredentials(config);
  const credential =
    source.kind === 'credential'
      ? source.token
      : await enrollWorker({
          address: config.masterGrpc,
          workerId: id,
          joinToken: source.token,
          channelCredentials,
          log,
          waitMs: deps.enrollWaitMs,
        });
  const reporter = createResultReporter({
    address: config.masterGrpc,
    workerId: id,
    credential,
    channelCredentials,
    coalesceMs: config.chunkCoalesceMs,
    log,
  });
  const runner = new TaskRunner({
    workerId: id,
    slots: config.slots,
    models: config.models,
    provider,
    reporter,
    log,
  });
  /** Slots, models, weight and labels as they are now (a live config changes them). */
  const settings: LiveSettings = {
    slots: config.slots,
    models: [...config.models],
    weight: config.weight,
    labels: { ...config.labels },
  };
  let lastAck: ControlAck | undefined;

  const onlineRecord = (): WorkerOnline => ({
    state: 'online',
    id,
    kind,
    models: [...settings.models],
    providers: [provider.name],
    catalog: local?.catalog() ?? settings.models.map((name) => ({ name, provider: provider.name })),
    continuation: provider.continues === true,
    slots: settings.slots,
    labels: settings.labels,
    weight: settings.weight,
    version: readVersion(),
    host: os.hostname().slice(0, 256),
    heartbeatMs: config.heartbeatMs,
    startedAt,
    draining: runner.isDraining,
    ...(lastAck && { ack: lastAck }),
  });

  let handle: WorkerHandle | undefined;
  let restartRequested = false;
  const onControl = createControlHandler({
    runner,
    settings,
    servable: local && (() => new Set(local.catalog().map((info) => info.name))),
    announce: (ack) => {
      if (ack) lastAck = ack;
      link.publishStatus();
      heartbeat.beat();
    },
    shutdown: (restart) => {
      restartRequested ||= restart;
      void handle?.close();
    },
    log,
  });

  const link = openMqttLink({
    url: config.mqttUrl,
    // The broker lets a worker act only as the id it logs in with.
    username: config.mqttUsername ?? id,
    password: config.mqttPassword ?? credential,
    tls: { ca: config.tlsCa, cert: config.tlsCert, key: config.tlsKey },
    workerId: id,
    topics,
    onlineRecord,
    onAssignment: (payload, topic) => {
      const assignment = parseMqttJson(assignmentSchema, payload, topic, log, MAX_ASSIGNMENT_BYTES);
      if (assignment) runner.accept(assignment);
    },
    onControl: (payload, topic) => {
      const control = parseMqttJson(controlSchema, payload, topic, log);
      if (control) onControl(control);
    },
    log,
  });
  flotaLogger.attachPublisher((line) => link.publishLog(line));

  const gpus = createGpuSampler({ log });
  const heartbeat = startHeartbeat(
    {
      workerId: id,
      cpuPct: createCpuSampler(),
      memory: memorySnapshot,
      gpus: () => gpus.current(),
      freeSlots: () => runner.freeSlots(),
      active: () => runner.active(),
      draining: () => runner.isDraining,
      loaded: local && (() => local.loaded()),
    },
    config.heartbeatMs,
    (heartbeat) => link.publishHeartbeat(heartbeat),
  );

  if (!(await settlesWithin(link.connected(), FIRST_CONNECT_WAIT_MS))) {
    log.warn({ url: config.mqttUrl.replace(/\/\/[^@/]*@/, '//***@') }, 'broker not reachable yet');
  }

  let closing: Promise<void> | undefined;
  let markDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    markDone = resolve;
  });

  const shutdown = async () => {
    log.info('worker stopping');
    runner.stopIntake();
    if (!(await settlesWithin(runner.idle(), config.shutdownGraceMs))) {
      log.warn({ active: runner.active() }, 'in-flight tasks did not finish in time: aborting');
      runner.abortAll();
      await settlesWithin(runner.idle(), ABORT_REPORT_WAIT_MS);
    }
    heartbeat.stop();
    await local?.close();
    log.info('worker stopped');
    await link.shutdown().catch((error: unknown) => {
      log.warn({ err: error instanceof Error ? error.message : error }, 'mqtt close failed');
    });
    flotaLogger.attachPublisher(undefined);
    reporter.close();
  };

  handle = {
    id,
    done,
    get restartRequested() {
      return restartRequested;
    },
    close() {
      closing ??= shutdown().finally(markDone);
      return closing;
    },
  };
  log.info({ kind, models: config.models, slots: config.slots }, 'worker started');
  return handle;
}
