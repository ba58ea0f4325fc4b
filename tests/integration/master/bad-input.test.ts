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
  type TaskResult,
  type WorkerReport,
} from '../../../proto/src/grpc.ts';
import { MAX_REPORTS_PER_MESSAGE } from '../../../proto/src/schemas/grpc.ts';
import type { Assignment, TaskView } from '../../../proto/src/schemas/task.ts';
import { workerClientId } from '../../../proto/src/topics.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { answerTo, openConnect, reportOnce, reportResult } from '../../helpers/report-stream.ts';
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

  /** One result on a fresh Connect stream: the master's answer; rejects with the call's error. */
  const report = async (result: TaskResult): Promise<TaskAck__Output> => {
    const { error, reply } = await reportResult(client, result, meta());
    if (error) throw error;
    return reply as TaskAck__Output;
  };

  /**
   * One message of `reports` on a fresh Connect stream: the answer to its last
   * result, or its first answer when it has none (a refused chunk); rejects with
   * the call's error.
   */
  const stream = async (reports: WorkerReport[]): Promise<TaskAck__Output> => {
    const { error, reply } = await reportOnce(client, meta(), reports);
    if (error) throw error;
    return reply as TaskAck__Output;
  };

  const fenceOf = (a: Assignment) => ({ taskId: a.taskId, attempt: a.attempt, lease: a.lease });
  /** The answer to a result (final) or a refused chunk (not final) of `ref`. */
  const ack = (
    ref: { taskId: string; attempt: number },
    final: boolean,
    reason?: string,
  ): TaskAck__Output => ({
    accepted: reason === undefined,
    reason: reason ?? '',
    taskId: ref.taskId,
    attempt: ref.attempt,
    final,
  });
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
      expect(await report({ ...fence, workerId: RAW, text: 'x' })).toEqual(
        ack(fence, true, 'unknown_task'),
      );
      expect(await stream([{ chunk: { ...fence, seq: 0, text: 'x' } }])).toEqual(
        ack(fence, false, 'unknown_task'),
      );
    });

    it('refuses a wrong lease and an attempt that is not current; the owner still finishes', async () => {
      const a = await submitRaw('fence me');
      expect(await report({ ...resultFor(a, 'x'), lease: 'wrong' })).toEqual(
        ack(a, true, 'stale_lease'),
      );
      expect(await report({ ...resultFor(a, 'x'), attempt: a.attempt + 1 })).toEqual(
        ack({ taskId: a.taskId, attempt: a.attempt + 1 }, true, 'stale_lease'),
      );
      expect(
        await stream([{ chunk: { ...fenceOf(a), lease: 'wrong', seq: 0, text: 'x' } }]),
      ).toEqual(ack(a, false, 'stale_lease'));
      expect(await report(resultFor(a, 'right'))).toEqual(ack(a, true));
      expect(await waitForTask(master, a.taskId)).toMatchObject({ result: 'right' });
    });

    it('refuses chunks and results of a revoked attempt', async () => {
      const first = await submitRaw('revoke me');
      // A retryable refusal: the master revokes attempt 1 and hands out attempt 2.
      const busy = { ...resultFor(first, ''), error: 'busy', errorCode: 'worker_full' };
      expect(await report(busy)).toMatchObject({ accepted: true });
      const second = await assignment(first.taskId, 2);
      expect(second.lease).not.toBe(first.lease);
      expect(await stream([{ chunk: { ...fenceOf(first), seq: 0, text: 'late' } }])).toEqual(
        ack(first, false, 'stale_lease'),
      );
      expect(await report(resultFor(first, 'late'))).toEqual(ack(first, true, 'stale_lease'));
      expect(await report(resultFor(second, 'current'))).toEqual(ack(second, true));
      expect(await waitForTask(master, first.taskId)).toMatchObject({ result: 'current' });
    });

    it('survives a stream cut mid-way: the caller reads a status, the owner finishes later', async () => {
      const a = await submitRaw('cut me');
      const cut = openConnect(client, meta());
      // Once the first chunk is on the wire, cut the stream.
      cut.call.write({ reports: [{ chunk: { ...fenceOf(a), seq: 0, text: 'par' } }] }, () =>
        cut.call.cancel(),
      );
      const { error } = await cut.ended;
      expect(error?.code).toBe(grpc.status.CANCELLED);
      expect(error?.details).toMatch(/cancel/i);
      expect(await report(resultFor(a, 'whole'))).toEqual(ack(a, true));
      expect(await waitForTask(master, a.taskId)).toMatchObject({ result: 'whole' });
    });

    it('carries several attempts on one stream; a bad report is refused or dropped and the stream goes on', async () => {
      const a = await submitRaw('mix me');
      const b = await submitRaw('and me');
      const s = openConnect(client, meta());
      /** The answer accepting `ref`'s result (a refusal of the same attempt came before). */
      const acceptance = (ref: Assignment) =>
        s.answer((x) => x.final && x.accepted && x.taskId === ref.taskId);
      const badResult = { ...resultFor(a, 'x'), lease: '' };
      s.write([
        { chunk: { ...fenceOf(a), seq: 0, text: 'a' } },
        { chunk: { ...fenceOf(b), seq: 0, text: 'b' } },
        // Fails its schema: dropped (and logged), never answered.
        { chunk: { ...fenceOf(b), lease: '', seq: 1, text: 'x' } },
        // Fails its schema: answered bad_request.
        { result: badResult },
      ]);
      expect((await answerTo(s, badResult)).reply).toEqual({
        ...ack(a, true, ''),
        reason: expect.stringMatching(/^bad_request: lease/),
      });
      await logs.waitForLine(
        (l) => l.msg === 'chunk dropped: invalid' && (l as { workerId?: string }).workerId === RAW,
        'the master logs the dropped chunk',
      );
      // The stream goes on: both attempts finish on it.
      s.write([
        { chunk: { ...fenceOf(b), seq: 1, text: 'b2' } },
        { result: resultFor(a, 'a') },
        { result: resultFor(b, 'b') },
      ]);
      expect((await acceptance(a)).reply).toEqual(ack(a, true));
      expect((await acceptance(b)).reply).toEqual(ack(b, true));
      // No chunk was refused: the bad one was dropped without an answer.
      expect(s.acks.filter((x) => !x.final)).toEqual([]);
      expect(s.acks).toHaveLength(3);
      s.end();
      expect(await s.ended).toEqual({});
      expect(await waitForTask(master, a.taskId)).toMatchObject({ result: 'a' });
      expect(await waitForTask(master, b.taskId)).toMatchObject({ result: 'b' });
    });

    it('a stream may end without a result: nothing is answered, the master ends its side', async () => {
      const c = await submitRaw('no end');
      const s = openConnect(client, meta());
      s.write([{ chunk: { ...fenceOf(c), seq: 0, text: 'no end' } }]);
      s.end();
      expect(await s.ended).toEqual({});
      expect(s.acks).toEqual([]);
      // The attempt is still the worker's: its result on a later stream counts.
      expect(await report(resultFor(c, 'c'))).toEqual(ack(c, true));
    });

    it(`takes ${MAX_REPORTS_PER_MESSAGE} reports in one message; more end the stream with INVALID_ARGUMENT, none handled`, async () => {
      const a = await submitRaw('many chunks');
      const full: WorkerReport[] = Array.from(
        { length: MAX_REPORTS_PER_MESSAGE - 1 },
        (_, seq) => ({
          chunk: { ...fenceOf(a), seq, text: 'x' },
        }),
      );
      full.push({ result: resultFor(a, 'many') });
      expect(await stream(full)).toEqual(ack(a, true));

      // Chunks of a task never given out: were any handled, unknown_task would count it (below).
      const fence = { taskId: 'any.raw-model.flood', attempt: 1, lease: newLease(RAW) };
      const flood = Array.from({ length: MAX_REPORTS_PER_MESSAGE + 1 }, (_, seq) => ({
        chunk: { ...fence, seq, text: 'x' },
      }));
      const err = await stream(flood).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(new RegExp(`at most ${MAX_REPORTS_PER_MESSAGE} reports`));
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
