/**
 * Per-worker credentials on the real master: gRPC calls need the caller's own
 * credential (WORKER_TOKEN) for the id they name; a worker configured with
 * its credential runs tasks.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  bearer,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
} from '../../../proto/src/grpc.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { reportResult } from '../../helpers/report-stream.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, masterGrpcClient, startTestMaster, startTestWorker } from './support.ts';

describe('worker credentials', () => {
  let redis: RedisServer;
  let master: MasterHandle;
  let worker: WorkerHandle;
  let client: MasterClient;

  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url });
    // startTestWorker issues tok-1 its own credential (as `flota token worker tok-1` would).
    worker = await startTestWorker(master, { WORKER_ID: 'tok-1' });
    client = masterGrpcClient(master);
  });
  afterAll(async () => {
    client?.close();
    await worker?.close();
    await master?.close();
    await redis?.stop();
  });

  /** One result on a Connect stream as `workerId`: the call's error, or the master's answer. */
  const call = (workerId: string, authorization?: string) => {
    const md = new grpc.Metadata();
    md.set(METADATA_WORKER_ID, workerId);
    if (authorization) md.set(METADATA_AUTHORIZATION, authorization);
    return reportResult(client, { taskId: 't', attempt: 1, lease: 'l' }, md);
  };

  it('refuses a call without a credential, with a forged one, or as another worker', async () => {
    const own = await master.issueWorkerCredential('intruder');
    const { error: none } = await call('intruder');
    expect(none?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(none?.details).toMatch(/no worker credential/);
    expect((await call('intruder', 'Bearer wrong-token-value')).error?.code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    // Well formed, not signed by this installation.
    const forged = `${own.slice(0, own.lastIndexOf('.'))}.${'A'.repeat(43)}`;
    const { error: unsigned } = await call('intruder', bearer(forged));
    expect(unsigned?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(unsigned?.details).toMatch(/not issued by this installation/);
    // A real credential, presented for another id.
    const { error: impostor } = await call('tok-1', bearer(own));
    expect(impostor?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(impostor?.details).toMatch(/another worker id/);
    // Its own id: the result reaches the result handler (which knows no such task) and is answered.
    const admitted = await call('intruder', bearer(own));
    expect(admitted.error).toBeUndefined();
    expect(admitted.reply).toMatchObject({ accepted: false, taskId: 't', attempt: 1, final: true });
  });

  it('runs tasks for a worker that has its credential', async () => {
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
