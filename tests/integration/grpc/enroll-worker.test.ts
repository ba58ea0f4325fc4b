/**
 * Workers that start with a join token (WORKER_JOIN_TOKEN) on the real
 * master: they enroll over gRPC, then log in to MQTT and report results with
 * the credential they got. A refused enrollment stops the start with the
 * master's reason; an id still online is waited for (a replaced replica).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/logger.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { EnrollmentError, enrollWorker } from '../../../worker/src/enroll.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker, testLogger } from '../master/support.ts';
import { LogSink } from '../worker/support.ts';
import { foreignCredentials } from './support.ts';

const SECRET = 'e'.repeat(64);

describe('workers enrolling with a join token', () => {
  let redis: RedisServer;
  let master: MasterHandle;
  /** The same installation's authority (same secret): issues join tokens the master accepts. */
  let authority: WorkerCredentials;
  let authorityDir: string;
  const workers: WorkerHandle[] = [];

  const joinWorker = (
    id: string,
    joinToken: string,
    enrollWaitMs = 5_000,
    logger = testLogger(id),
  ) => {
    const config = loadWorkerConfig({
      MQTT_URL: master.mqttUrl,
      MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
      HEARTBEAT_MS: '500',
      WORKER_ID: id,
      WORKER_JOIN_TOKEN: joinToken,
    });
    return startWorker(config, { logger, enrollWaitMs }).then((worker) => {
      workers.push(worker);
      return worker;
    });
  };

  const workerState = async (id: string) => {
    const { body } = await api<{ workers: Array<{ id: string; state: string }> }>(
      master,
      '/api/workers',
    );
    return body.workers.find((w) => w.id === id)?.state ?? 'absent';
  };

  const runTask = async (prompt: string) => {
    const { body } = await api<{ id: string }>(master, '/api/tasks', { body: { prompt } });
    return waitFor(
      async () => {
        const { body: t } = await api<TaskView>(master, `/api/tasks/${body.id}`);
        return t.state === 'completed' ? t : undefined;
      },
      { what: `task ${body.id} completed` },
    );
  };

  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url, env: { FLOTA_SECRET: SECRET } });
    authorityDir = await mkdtemp(join(tmpdir(), 'flota-authority-'));
    authority = await WorkerCredentials.open({ dataDir: authorityDir, secret: SECRET });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await master?.close();
    await redis?.stop();
    await rm(authorityDir, { recursive: true, force: true });
  });

  it('enrolls, comes online under its own credential and runs tasks', async () => {
    await joinWorker('swarm-1', authority.issueJoin('swarm-'));
    await waitFor(async () => (await workerState('swarm-1')) === 'online', {
      what: 'swarm-1 online',
    });
    expect(await runTask('joined')).toMatchObject({ result: 'echo: joined', workerId: 'swarm-1' });
  });

  it('stops at once when the master refuses: id outside the prefix, a foreign join token', async () => {
    const outside = await joinWorker('gpu-9', authority.issueJoin('swarm-')).catch((e) => e);
    expect(outside).toBeInstanceOf(EnrollmentError);
    expect((outside as Error).message).toMatch(/PERMISSION_DENIED.*starting with "swarm-"/);
    const foreign = (await foreignCredentials()).issueJoin('swarm-');
    const refused = await joinWorker('swarm-2', foreign).catch((e) => e);
    expect(refused).toBeInstanceOf(EnrollmentError);
    expect((refused as Error).message).toMatch(/UNAUTHENTICATED.*not issued by this installation/);
    expect(await workerState('swarm-2')).toBe('absent');
  });

  it('waits while a worker with its id is online, and enrolls once that one is gone', async () => {
    const previous = await startTestWorker(master, { WORKER_ID: 'swarm-3' });
    await waitFor(async () => (await workerState('swarm-3')) === 'online', {
      what: 'the previous swarm-3 online',
    });
    const logs = new LogSink();
    const replacement = joinWorker(
      'swarm-3',
      authority.issueJoin('swarm-'),
      30_000,
      createLogger({ source: 'swarm-3', level: 'debug', destination: logs }),
    );
    let started = false;
    void replacement.then(() => {
      started = true;
    });
    // Refused while the previous one is online: waiting, not started.
    const retry = await waitFor(
      () => logs.lines.find((l) => l.msg === 'enrollment not possible yet; retrying'),
      { what: 'the refused enrollment' },
    );
    expect(String(retry.reason)).toMatch(/^ALREADY_EXISTS/);
    expect(started).toBe(false);
    await previous.close();
    await replacement;
    await waitFor(async () => (await workerState('swarm-3')) === 'online', {
      what: 'the replacement swarm-3 online',
    });
  });

  it('tries again on a new channel when a dial neither connects nor fails', async () => {
    const target = master.grpcPort;
    // The first connection is taken and never answered (the address of a master that was
    // just replaced can drop packets); later ones reach the master.
    const sockets = new Set<net.Socket>();
    let dials = 0;
    const front = net.createServer((socket) => {
      dials += 1;
      sockets.add(socket);
      socket.on('error', () => undefined);
      if (dials === 1) return;
      const back = net.connect(target, '127.0.0.1');
      sockets.add(back);
      back.on('error', () => socket.destroy());
      socket.pipe(back).pipe(socket);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const { port } = front.address() as net.AddressInfo;
    try {
      const credential = await enrollWorker({
        address: `127.0.0.1:${port}`,
        workerId: 'swarm-7',
        joinToken: authority.issueJoin('swarm-'),
        channelCredentials: grpc.credentials.createInsecure(),
        log: testLogger('swarm-7').logger,
        waitMs: 10_000,
        callTimeoutMs: 1_000,
      });
      expect(credential).toMatch(/^fwt1\.swarm-7\./);
      expect(dials).toBe(2);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });

  it('gives up with a clear error when the id stays online', async () => {
    const refused = await joinWorker('swarm-1', authority.issueJoin('swarm-'), 1_000).catch(
      (e) => e,
    );
    expect(refused).toBeInstanceOf(EnrollmentError);
    expect((refused as Error).message).toMatch(/in time \(ALREADY_EXISTS: .*is online/);
  });
});
