/**
 * TLS on the master's gRPC server, with a CA made for the test (openssl):
 * plaintext is refused, a client trusting the CA gets through; with client
 * certificates required (mutual TLS) a client without one is refused. Then
 * whole workers over TLS against a real master (gRPC and mqtts).
 */
import { request } from 'node:https';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { createTestCa, type TestCa } from '../../helpers/test-ca.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { startTestMaster, testLogger } from '../master/support.ts';
import { type GrpcRig, rawClient, reportResult, startGrpcRig, workerMetadata } from './support.ts';

let ca: TestCa;
let caPem: string;

beforeAll(async () => {
  ca = await createTestCa();
  caPem = await ca.read(ca.caCert);
});
afterAll(async () => {
  await ca?.remove();
});

/** One result as `w-tls` on a Connect stream over `channel`; the call's error code, or 'ok' once answered. */
async function tryCall(rig: GrpcRig, channel: grpc.ChannelCredentials) {
  const client = rawClient(rig.address, channel);
  const credential = rig.credentials.issue('w-tls');
  const outcome = await reportResult(
    client,
    { taskId: 't-tls', attempt: 1, lease: 'l', workerId: 'w-tls', text: 'x' },
    workerMetadata('w-tls', credential),
  );
  client.close();
  if (outcome.error) return grpc.status[outcome.error.code];
  return outcome.reply?.accepted ? 'ok' : `refused: ${outcome.reply?.reason}`;
}

describe('gRPC server with TLS', () => {
  it('speaks TLS only; a client trusting the CA gets through', async () => {
    const rig = await startGrpcRig({
      cert: await ca.read(ca.server.cert),
      key: await ca.read(ca.server.key),
      requireClientCert: false,
    });
    try {
      expect(await tryCall(rig, grpc.credentials.createInsecure())).toBe('UNAVAILABLE');
      // The system's roots do not know the test CA.
      expect(await tryCall(rig, grpc.credentials.createSsl())).toBe('UNAVAILABLE');
      expect(await tryCall(rig, grpc.credentials.createSsl(Buffer.from(caPem)))).toBe('ok');
    } finally {
      await rig.close();
    }
  });

  it('with client certificates required, refuses a client without one', async () => {
    const rig = await startGrpcRig({
      cert: await ca.read(ca.server.cert),
      key: await ca.read(ca.server.key),
      ca: caPem,
      requireClientCert: true,
    });
    const client = ca.client('w-tls');
    try {
      expect(await tryCall(rig, grpc.credentials.createSsl(Buffer.from(caPem)))).toBe(
        'UNAVAILABLE',
      );
      const withCert = grpc.credentials.createSsl(
        Buffer.from(caPem),
        Buffer.from(await ca.read(client.key)),
        Buffer.from(await ca.read(client.cert)),
      );
      expect(await tryCall(rig, withCert)).toBe('ok');
      // A certificate opens the channel; the call still needs the worker's credential.
      const anonymous = rawClient(rig.address, withCert);
      const outcome = await reportResult(
        anonymous,
        { taskId: 't', attempt: 1, lease: 'l' },
        workerMetadata('w-tls'),
      );
      anonymous.close();
      expect(outcome.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      await rig.close();
    }
  });
});

describe('workers over TLS on a real master', () => {
  let redis: RedisServer;
  const workers: WorkerHandle[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await redis?.stop();
  });

  const tlsMaster = (clientAuth: boolean) =>
    startTestMaster({
      queueUrl: redis.url,
      env: {
        TLS_CERT: ca.server.cert,
        TLS_KEY: ca.server.key,
        TLS_CA: ca.caCert,
        TLS_CLIENT_AUTH: clientAuth ? '1' : '0',
      },
    });

  const tlsWorker = async (master: MasterHandle, id: string, env: Record<string, string>) => {
    const config = loadWorkerConfig({
      MQTT_URL: master.mqttUrl,
      MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
      HEARTBEAT_MS: '500',
      WORKER_ID: id,
      WORKER_TOKEN: await master.issueWorkerCredential(id),
      TLS_CA: ca.caCert,
      ...env,
    });
    expect(config.grpcTls).toBe(true);
    const worker = await startWorker(config, { logger: testLogger(id) });
    workers.push(worker);
    return worker;
  };

  /** The REST API over HTTPS, trusting the test CA. */
  const api = <T>(master: MasterHandle, path: string, body?: unknown) =>
    new Promise<T>((resolve, reject) => {
      const req = request(
        `${master.httpUrl}${path}`,
        {
          method: body === undefined ? 'GET' : 'POST',
          headers: { 'content-type': 'application/json' },
          ca: caPem,
          // The certificate names localhost too; a name (not an IP) is what SNI carries.
          servername: 'localhost',
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (part) => {
            text += part;
          });
          res.on('end', () => resolve(JSON.parse(text) as T));
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  const runTask = async (master: MasterHandle, prompt: string) => {
    const { id } = await api<{ id: string }>(master, '/api/tasks', { prompt });
    return waitFor(
      async () => {
        const task = await api<TaskView>(master, `/api/tasks/${id}`);
        return task.state === 'completed' ? task : undefined;
      },
      { what: `task ${id} completed` },
    );
  };

  it('a worker trusting TLS_CA runs tasks over mqtts and gRPC with TLS', async () => {
    const master = await tlsMaster(false);
    try {
      expect(master.mqttUrl).toMatch(/^mqtts:/);
      await tlsWorker(master, 'tls-1', {});
      expect(await runTask(master, 'over tls')).toMatchObject({
        result: 'echo: over tls',
        workerId: 'tls-1',
      });
    } finally {
      await Promise.all(workers.splice(0).map((w) => w.close()));
      await master.close();
    }
  });

  it('mutual TLS: a worker with a client certificate runs tasks', async () => {
    const master = await tlsMaster(true);
    try {
      const cert = ca.client('mtls-1');
      await tlsWorker(master, 'mtls-1', { TLS_CERT: cert.cert, TLS_KEY: cert.key });
      expect(await runTask(master, 'mutual')).toMatchObject({
        result: 'echo: mutual',
        workerId: 'mtls-1',
      });
    } finally {
      await Promise.all(workers.splice(0).map((w) => w.close()));
      await master.close();
    }
  });
});
