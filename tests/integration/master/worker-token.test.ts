/** WORKER_TOKEN: the master refuses gRPC calls without it; a worker configured with it works. */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
} from '../../../proto/src/grpc.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, masterGrpcClient, startTestMaster, startTestWorker } from './support.ts';

const TOKEN = 'a-long-worker-token';

describe('worker token', () => {
  let redis: RedisServer;
  let master: MasterHandle;
  let worker: WorkerHandle;
  let client: MasterClient;

  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url, env: { WORKER_TOKEN: TOKEN } });
    worker = await startTestWorker(master, { WORKER_ID: 'tok-1', WORKER_TOKEN: TOKEN });
    client = masterGrpcClient(master);
  });
  afterAll(async () => {
    client?.close();
    await worker?.close();
    await master?.close();
    await redis?.stop();
  });

  const call = (authorization?: string) =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      const md = new grpc.Metadata();
      md.set(METADATA_WORKER_ID, 'intruder');
      if (authorization) md.set(METADATA_AUTHORIZATION, authorization);
      client.ReportResult(
        { taskId: 't', attempt: 1, lease: 'l' },
        md,
        { deadline: Date.now() + 5_000 },
        (err) => resolve(err),
      );
    });

  it('refuses calls without the token or with a wrong one', async () => {
    expect((await call())?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await call('Bearer wrong-token-value'))?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(await call(`Bearer ${TOKEN}`)).toBeNull();
  });

  it('runs tasks for a worker that has the token', async () => {
    const { body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt: 'with token' },
    });
    const task = await waitFor(
      async () => {
        const { body: t } = await api<TaskView>(master, `/api/tasks/${body.id}`);
        return t.state === 'completed' ? t : undefined;
      },
      { what: 'task completed' },
    );
    expect(task).toMatchObject({ result: 'echo: with token', workerId: 'tok-1' });
  });
});
