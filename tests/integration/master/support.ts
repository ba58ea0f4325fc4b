/** Starts a real master (and real workers) inside the test process, on free ports. */
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { createLogger, type FlotaLogger } from '../../../common/logger.ts';
import { loadMasterConfig, type MasterConfig } from '../../../master/src/config.ts';
import { type MasterHandle, startMaster } from '../../../master/src/main.ts';
import {
  bearer,
  loadMasterPackage,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
} from '../../../proto/src/grpc.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { randomName } from '../../helpers/random-name.ts';

/** JSON logs are dropped unless FLOTA_TEST_LOGS=1 (they still reach MQTT). */
export function testLogger(source: string): FlotaLogger {
  const sink = process.env.FLOTA_TEST_LOGS
    ? process.stderr
    : new Writable({
        write(_chunk, _enc, done) {
          done();
        },
      });
  return createLogger({ source, level: 'debug', destination: sink });
}

export interface TestMasterOptions {
  queueUrl?: string;
  /** External broker; undefined → the master's embedded aedes on a free port. */
  mqttUrl?: string;
  dataDir?: string;
  env?: Record<string, string>;
}

export async function startTestMaster(
  options: TestMasterOptions,
): Promise<MasterHandle & { config: MasterConfig }> {
  const config = loadMasterConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    GRPC_PORT: '0',
    MQTT_PORT: '0',
    // Tests poll the API freely; the suites that test limits set RATE_LIMIT_RPM themselves.
    RATE_LIMIT_RPM: '0',
    QUEUE_NAMESPACE: randomName('t')
      .replace(/[^a-z0-9_]/g, '_')
      .toLowerCase(),
    ...(options.queueUrl ? { QUEUE_URL: options.queueUrl } : {}),
    ...(options.mqttUrl ? { MQTT_URL: options.mqttUrl } : {}),
    ...(options.dataDir ? { FLOTA_DATA_DIR: options.dataDir } : {}),
    ...options.env,
  });
  const master = await startMaster(config, { logger: testLogger('master') });
  return Object.assign(master, { config });
}

/** A worker with its own credential from the master (unless `env` brings a WORKER_TOKEN). */
export async function startTestWorker(
  master: MasterHandle,
  env: Record<string, string>,
): Promise<WorkerHandle> {
  const base = {
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    HEARTBEAT_MS: '500',
    ...env,
  };
  const { workerId } = loadWorkerConfig(base);
  const token = env.WORKER_TOKEN ?? (await master.issueWorkerCredential(workerId));
  const config = loadWorkerConfig({ ...base, WORKER_ID: workerId, WORKER_TOKEN: token });
  return startWorker(config, { logger: testLogger(config.workerId) });
}

export async function api<T = unknown>(
  master: MasterHandle,
  path: string,
  init?: { method?: string; body?: unknown; headers?: Record<string, string> },
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${master.httpUrl}${path}`, {
    method: init?.method ?? (init?.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...init?.headers },
    body:
      init?.body === undefined
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : JSON.stringify(init.body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/**
 * A gRPC client for the master's callback service, as a hand-written worker
 * would use. With `as`, every call carries that worker's id and credential
 * unless the call's own metadata sets them.
 */
export function masterGrpcClient(
  master: MasterHandle,
  as?: { workerId: string; credential: string },
): MasterClient {
  const { proto } = loadMasterPackage();
  const identify: grpc.Interceptor = (options, next) =>
    new grpc.InterceptingCall(next(options), {
      start(metadata, listener, start) {
        if (as && metadata.get(METADATA_WORKER_ID).length === 0) {
          metadata.set(METADATA_WORKER_ID, as.workerId);
        }
        if (as && metadata.get(METADATA_AUTHORIZATION).length === 0) {
          metadata.set(METADATA_AUTHORIZATION, bearer(as.credential));
        }
        start(metadata, listener);
      },
    });
  return new proto.flota.v1.Master(
    `127.0.0.1:${master.grpcPort}`,
    grpc.credentials.createInsecure(),
    { interceptors: [identify] },
  );
}
