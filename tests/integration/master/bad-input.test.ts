/**
 * Bad input on the master's gRPC callback server, against a real master with
 * a real worker (for the end-to-end check) and a hand-driven "worker" (raw
 * MQTT + raw gRPC) whose assignments the test controls. Every caller reads
 * why it was refused; the fencing metric counts the refusals; the master
 * stays up. MQTT input: bad-input-mqtt.test.ts; REST and Socket.IO:
 * bad-input-clients.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newLease } from '../../../master/src/dispatch/leases.ts';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  type MasterClient,
  METADATA_WORKER_ID,
  type TaskAck__Output,
  type TaskChunk,
  type TaskResult,
} from '../../../proto/src/grpc.ts';
import type { Assignment, TaskView } from '../../../proto/src/schemas/task.ts';
import { workerClientId } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import {
  type ErrorTrap,
  type LogTap,
  runTask,
  tapLogs,
  topics,
  trapProcessErrors,
  waitForTask,
} from './bad-input-support.ts';
import { api, masterGrpcClient, startTestMaster, startTestWorker } from './support.ts';

const RAW = 'raw-fence-1';
const MODEL = 'raw-model';
const TEN_MB = 10 * 1024 * 1024;

describe('bad input on gRPC', () => {
  let trap: ErrorTrap;
  let redis: RedisServer;
  let master: MasterHandle;
  let worker: WorkerHandle;
  let raw: MqttClient;
  /** The hand-driven worker's own credential (its MQTT password). */
  let rawCredential: string;
  let client: MasterClient;
  let logs: LogTap;
  let rejectedBefore: Record<string, number>;
  const assignments: Assignment[] = [];

  const meta = () => {
    const m = new grpc.Metadata();
    m.set(METADATA_WORKER_ID, RAW);
    return m;
  };
  const deadline = () => Date.now() + 10_000;

  const report = (result: TaskResult) =>
    new Promise<TaskAck__Output>((resolve, reject) =>
      client.ReportResult(result, meta(), { deadline: deadline() }, (err, ack) =>
        err ? reject(err) : resolve(ack!),
      ),
    );

  /** One StreamTask call: writes the messages, half-closes, resolves with the ack. */
  const stream = (messages: TaskChunk[]) =>
    new Promise<TaskAck__Output>((resolve, reject) => {
      const call = client.StreamTask(meta(), { deadline: deadline() }, (err, ack) =>
        err ? reject(err) : resolve(ack!),
      );
      for (const m of messages) call.write(m);
      call.end();
    });

  const fenceOf = (a: Assignment) => ({ taskId: a.taskId, attempt: a.attempt, lease: a.lease });
  const resultFor = (a: Assignment, text: string): TaskResult => ({
    ...fenceOf(a),
    workerId: RAW,
    text,
    startedAt: 1,
    finishedAt: 2,
    processingMs: 1,
  });

  const assignment = (taskId: string, attempt: number) =>
    waitFor(() => assignments.find((a) => a.taskId === taskId && a.attempt === attempt), {
      what: `assignment ${taskId}#${attempt}`,
    });

  async function submitRaw(prompt: string): Promise<Assignment> {
    const { status, body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt, model: MODEL },
    });
    expect(status).toBe(202);
    return assignment(body.id, 1);
  }

  async function rejectedCounts(): Promise<Record<string, number>> {
    const text = await (await fetch(`${master.httpUrl}/metrics`)).text();
    const counts: Record<string, number> = {};
    for (const m of text.matchAll(/^flota_results_rejected_total\{reason="([^"]+)"\} (\d+)$/gm)) {
      counts[m[1] as string] = Number(m[2]);
    }
    return counts;
  }

  beforeAll(async () => {
    trap = trapProcessErrors();
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url });
    logs = await tapLogs(master.mqttUrl);
    worker = await startTestWorker(master, { WORKER_ID: 'real-1' });
    rawCredential = await master.issueWorkerCredential(RAW);
    raw = await mqtt.connectAsync(master.mqttUrl, {
      clientId: workerClientId(RAW),
      username: RAW,
      password: rawCredential,
    });
    raw.on('message', (_topic, payload) => assignments.push(JSON.parse(payload.toString())));
    await raw.subscribeAsync(topics.tasks(RAW), { qos: 1 });
    await raw.publishAsync(
      topics.status(RAW),
      JSON.stringify({
        state: 'online',
        id: RAW,
        kind: 'cpu',
        models: [MODEL],
        providers: ['echo'],
        slots: 8,
        labels: {},
        version: 'raw',
        host: 'test',
        heartbeatMs: 60_000,
        startedAt: Date.now(),
      }),
      { qos: 1 },
    );
    await waitFor(
      async () => {
        const { body } = await api<{ models: string[] }>(master, '/api/workers');
        return body.models.includes(MODEL) && body.models.includes('echo');
      },
      { what: 'both workers registered' },
    );
    client = masterGrpcClient(master, { workerId: RAW, credential: rawCredential });
    rejectedBefore = await rejectedCounts();
  });

  afterAll(async () => {
    client?.close();
    await raw?.endAsync();
    await worker?.close();
    await logs?.close();
    await master?.close();
    await redis?.stop();
    trap?.dispose();
  });

  describe('results and chunks', () => {
    it('refuses a result and a chunk for a task it never gave out', async () => {
      // A lease of the right shape for this worker: a lease made for another is refused sooner.
      const fence = { taskId: 'any.raw-model.nope', attempt: 1, lease: newLease(RAW) };
      expect(await report({ ...fence, workerId: RAW, text: 'x' })).toEqual({
        accepted: false,
        reason: 'unknown_task',
      });
      expect(await stream([{ ...fence, seq: 0, text: 'x' }])).toEqual({
        accepted: false,
        reason: 'unknown_task',
      });
    });

    it('refuses a wrong lease and an attempt that is not current; the owner still finishes', async () => {
      const a = await submitRaw('fence me');
      const stale = { accepted: false, reason: 'stale_lease' };
      expect(await report({ ...resultFor(a, 'x'), lease: 'wrong' })).toEqual(stale);
      expect(await report({ ...resultFor(a, 'x'), attempt: a.attempt + 1 })).toEqual(stale);
      expect(await stream([{ ...fenceOf(a), lease: 'wrong', seq: 0, text: 'x' }])).toEqual(stale);
      expect(await report(resultFor(a, 'right'))).toEqual({ accepted: true, reason: '' });
      expect(await waitForTask(master, a.taskId)).toMatchObject({ result: 'right' });
    });

    it('refuses chunks and results of a revoked attempt', async () => {
      const first = await submitRaw('revoke me');
      // A retryable refusal: the master revokes attempt 1 and hands out attempt 2.
      const busy = { ...resultFor(first, ''), error: 'busy', errorCode: 'worker_full' };
      expect(await report(busy)).toMatchObject({ accepted: true });
      const second = await assignment(first.taskId, 2);
      expect(second.lease).not.toBe(first.lease);
      const stale = { accepted: false, reason: 'stale_lease' };
      expect(await stream([{ ...fenceOf(first), seq: 0, text: 'late' }])).toEqual(stale);
      expect(await report(resultFor(first, 'late'))).toEqual(stale);
      expect(await report(resultFor(second, 'current'))).toEqual({ accepted: true, reason: '' });
      expect(await waitForTask(master, first.taskId)).toMatchObject({ result: 'current' });
    });

    it('survives a stream cut mid-way: the caller reads a status, the owner finishes later', async () => {
      const a = await submitRaw('cut me');
      const failure = new Promise<grpc.ServiceError>((resolve) => {
        const call = client.StreamTask(meta(), { deadline: deadline() }, (err) =>
          resolve(err as grpc.ServiceError),
        );
        // Once the first chunk is on the wire, cut the stream.
        call.write({ ...fenceOf(a), seq: 0, text: 'par' }, () => call.cancel());
      });
      const err = await failure;
      expect(err.code).toBe(grpc.status.CANCELLED);
      expect(err.details).toMatch(/cancel/i);
      await logs.waitForLine(
        (l) => l.msg === 'result stream cut' && (l as { taskId?: string }).taskId === a.taskId,
        'the master logs the cut',
      );
      expect(await report(resultFor(a, 'whole'))).toEqual({ accepted: true, reason: '' });
    });

    it('refuses a stream that mixes attempts, ends without a final, or has bad fields', async () => {
      const a = await submitRaw('mix me');
      const b = await submitRaw('and me');
      const mixed = await stream([
        { ...fenceOf(a), seq: 0, text: 'a' },
        { ...fenceOf(a), seq: 1, text: '', final: resultFor(b, 'b') },
      ]);
      expect(mixed).toMatchObject({
        accepted: false,
        reason: expect.stringMatching(/^bad_request: .*attempt/),
      });
      expect(await stream([{ ...fenceOf(a), seq: 1, text: 'no end' }])).toEqual({
        accepted: false,
        reason: 'no_final',
      });
      expect(await stream([{ ...fenceOf(a), lease: '', seq: 2, text: 'x' }])).toMatchObject({
        accepted: false,
        reason: expect.stringMatching(/^bad_request: lease/),
      });
      expect(await report(resultFor(a, 'a'))).toMatchObject({ accepted: true });
      expect(await report(resultFor(b, 'b'))).toMatchObject({ accepted: true });
    });

    it('answers a 10 MB message with RESOURCE_EXHAUSTED and a message', async () => {
      const err = await report({
        taskId: 'x',
        attempt: 1,
        lease: 'l',
        text: 'x'.repeat(TEN_MB),
      }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(err?.details).toMatch(/larger than max/i);
    });

    it('counts every fencing refusal in /metrics, by reason', async () => {
      const now = await rejectedCounts();
      const delta = (reason: string) => (now[reason] ?? 0) - (rejectedBefore[reason] ?? 0);
      expect({ unknown_task: delta('unknown_task'), stale_lease: delta('stale_lease') }).toEqual({
        unknown_task: 2,
        stale_lease: 5,
      });
    });
  });

  it('stays up and still runs a task end to end, with nothing uncaught', async () => {
    expect((await api<{ ok: boolean }>(master, '/healthz')).body).toEqual({ ok: true });
    const task: TaskView = await runTask(master, 'still here');
    expect(task).toMatchObject({
      state: 'completed',
      result: 'echo: still here',
      workerId: 'real-1',
    });
    expect(trap.errors).toEqual([]);
  });
});
