/**
 * The gRPC callback server on loopback, driven by a hand-written "worker"
 * (raw MQTT + raw gRPC), the way a worker in another language would.
 */
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import {
  bearer,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
  type TaskAck__Output,
  type TaskResult,
} from '../../../proto/src/grpc.ts';
import type { Assignment, TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { answerTo, openConnect, reportResult } from '../../helpers/report-stream.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, masterGrpcClient, startTestMaster } from './support.ts';

const require = createRequire(import.meta.url);
const topics = createTopics();
const WORKER = 'raw-1';

function meta(workerId = WORKER): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set(METADATA_WORKER_ID, workerId);
  return m;
}

const deadline = () => Date.now() + 5_000;

describe('gRPC callback server', () => {
  let redis: RedisServer;
  let master: MasterHandle;
  let worker: MqttClient;
  let client: MasterClient;
  let credential: string;
  const assignments: Assignment[] = [];

  /** One result on a fresh Connect stream: the master's answer; rejects with the call's error. */
  const report = async (result: TaskResult, workerId = WORKER): Promise<TaskAck__Output> => {
    const { error, reply } = await reportResult(client, result, meta(workerId));
    if (error) throw error;
    return reply as TaskAck__Output;
  };
  /** The answer accepting `ref`'s result. */
  const accepted = (ref: { taskId: string; attempt: number }) => ({
    accepted: true,
    reason: '',
    taskId: ref.taskId,
    attempt: ref.attempt,
    final: true,
  });

  async function submitAndReceive(prompt: string): Promise<Assignment> {
    const { body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt, model: 'raw-model' },
    });
    return waitFor(() => assignments.find((a) => a.taskId === body.id), { what: 'assignment' });
  }

  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url });
    credential = await master.issueWorkerCredential(WORKER);
    worker = await mqtt.connectAsync(master.mqttUrl, {
      clientId: workerClientId(WORKER),
      username: WORKER,
      password: credential,
      will: {
        topic: topics.status(WORKER),
        payload: Buffer.from(JSON.stringify({ state: 'offline', id: WORKER })),
        retain: true,
        qos: 1,
      },
    });
    worker.on('message', (_topic, payload) => assignments.push(JSON.parse(payload.toString())));
    await worker.subscribeAsync(topics.tasks(WORKER), { qos: 1 });
    await worker.publishAsync(
      topics.status(WORKER),
      JSON.stringify({
        state: 'online',
        id: WORKER,
        kind: 'cpu',
        models: ['raw-model'],
        providers: ['echo'],
        slots: 4,
        labels: {},
        version: 'raw',
        host: 'test',
        startedAt: Date.now(),
      }),
      { retain: true, qos: 1 },
    );
    client = masterGrpcClient(master, { workerId: WORKER, credential });
  });

  afterAll(async () => {
    client?.close();
    await worker?.endAsync();
    await master?.close();
    await redis?.stop();
  });

  it('serves the standard health service', async () => {
    const def = protoLoader.loadSync(
      require.resolve('grpc-health-check/proto/health/v1/health.proto'),
      { enums: String },
    );
    const Health = grpc.loadPackageDefinition(def).grpc as unknown as {
      health: { v1: { Health: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } };
    };
    const health = new Health.health.v1.Health(
      `127.0.0.1:${master.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as grpc.Client & {
      Check(
        req: object,
        opts: grpc.CallOptions,
        cb: (err: Error | null, res?: { status: string }) => void,
      ): void;
    };
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      health.Check({ service: 'flota.v1.Master' }, { deadline: deadline() }, (err, r) =>
        err ? reject(err) : resolve(r!),
      ),
    );
    health.close();
    expect(res.status).toBe('SERVING');
  });

  it('answers server reflection (what grpcurl uses)', async () => {
    const path = require.resolve(
      '@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
    );
    const def = protoLoader.loadSync(path);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: {
        reflection: {
          v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => grpc.Client };
        };
      };
    };
    const reflection = new pkg.grpc.reflection.v1.ServerReflection(
      `127.0.0.1:${master.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as grpc.Client & {
      ServerReflectionInfo(): grpc.ClientDuplexStream<
        object,
        { listServicesResponse?: { service: { name: string }[] } }
      >;
    };
    const call = reflection.ServerReflectionInfo();
    const reply = new Promise<{ listServicesResponse?: { service: { name: string }[] } }>(
      (resolve, reject) => {
        call.on('data', resolve);
        call.on('error', reject);
      },
    );
    call.write({ listServices: '' });
    const names = (await reply).listServicesResponse?.service.map((s) => s.name);
    call.end();
    reflection.close();
    expect(names).toEqual(expect.arrayContaining(['flota.v1.Master', 'grpc.health.v1.Health']));
  });

  it('fences results: unknown task, wrong lease, wrong worker are rejected; the owner is accepted once', async () => {
    const a = await submitAndReceive('fence me');
    const base = {
      taskId: a.taskId,
      attempt: a.attempt,
      lease: a.lease,
      workerId: WORKER,
      text: 'answer',
      startedAt: 1,
      finishedAt: 2,
      processingMs: 1,
    };
    expect(await report({ ...base, taskId: 'any.raw-model.unknown' })).toMatchObject({
      accepted: false,
      reason: 'unknown_task',
    });
    expect(await report({ ...base, lease: 'not-the-lease' })).toMatchObject({
      accepted: false,
      reason: 'stale_lease',
    });
    expect(await report({ ...base, attempt: a.attempt + 1 })).toMatchObject({
      accepted: false,
      reason: 'stale_lease',
    });
    // Its credential names raw-1: it cannot speak as another worker.
    const impostor = await report(base, 'someone-else').catch((e: grpc.ServiceError) => e);
    expect((impostor as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect(await report({ ...base, lease: '' })).toMatchObject({
      accepted: false,
      reason: expect.stringMatching(/^bad_request/),
    });
    expect(await report(base)).toEqual(accepted(a));
    // The attempt is over: the store no longer holds the job under that lease.
    expect(await report(base)).toMatchObject({ accepted: false, reason: 'stale_lease' });
    const { body } = await api<TaskView>(master, `/api/tasks/${a.taskId}`);
    expect(body).toMatchObject({ state: 'completed', result: 'answer', workerId: WORKER });
  });

  it('rejects a call without a worker id, even with a valid credential', async () => {
    const bare = masterGrpcClient(master);
    const m = new grpc.Metadata();
    m.set(METADATA_AUTHORIZATION, bearer(credential));
    const { error: err, reply } = await reportResult(
      bare,
      { taskId: 'x', attempt: 1, lease: 'l' },
      m,
    );
    bare.close();
    expect(reply).toBeUndefined();
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/x-flota-worker-id/);
  });

  it('takes a streamed answer, drops resent chunks, and survives a stream cut in the middle', async () => {
    const cut = await submitAndReceive('cut me');
    const broken = openConnect(client, meta());
    broken.write([
      {
        chunk: { taskId: cut.taskId, attempt: cut.attempt, lease: cut.lease, seq: 0, text: 'par' },
      },
    ]);
    broken.call.cancel();
    expect((await broken.ended).error?.code).toBe(grpc.status.CANCELLED);

    const a = await submitAndReceive('stream me');
    const fence = { taskId: a.taskId, attempt: a.attempt, lease: a.lease };
    const result = { ...fence, workerId: WORKER, text: 'Hello', processingMs: 3 };
    const stream = openConnect(client, meta());
    // Several reports per message, several messages; a resent chunk (seq 0 again) is dropped.
    stream.write([
      { chunk: { ...fence, seq: 0, text: 'Hel' } },
      { chunk: { ...fence, seq: 0, text: 'Hel' } },
    ]);
    stream.write([{ chunk: { ...fence, seq: 1, text: 'lo' } }, { result }]);
    expect((await answerTo(stream, result)).reply).toEqual(accepted(a));
    // No chunk was refused: the only answer is the result's.
    expect(stream.acks).toEqual([accepted(a)]);
    const { body } = await api<TaskView>(master, `/api/tasks/${a.taskId}`);
    expect(body).toMatchObject({ state: 'completed', result: 'Hello' });
    // The cut task is still running and its owner can still finish it, on the same open stream.
    const whole = { ...cut, workerId: WORKER, text: 'partial, then whole' };
    // The worker sends it and stops at once: the master still answers, then ends its side cleanly.
    stream.write([{ result: whole }]);
    stream.end();
    expect((await answerTo(stream, whole)).reply).toEqual(accepted(cut));
    expect(await stream.ended).toEqual({});
  });

  it('hands the conversation history to the worker with the prompt', async () => {
    const messages = [
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hello Ada.' },
    ];
    const { body } = await api<{ id: string }>(master, '/api/tasks', {
      body: { prompt: 'What is my name?', model: 'raw-model', messages },
    });
    const a = await waitFor(() => assignments.find((x) => x.taskId === body.id), {
      what: 'assignment',
    });
    expect(a).toMatchObject({ prompt: 'What is my name?', messages });
    expect(
      await report({
        taskId: a.taskId,
        attempt: a.attempt,
        lease: a.lease,
        workerId: WORKER,
        text: 'Ada',
      }),
    ).toEqual(accepted(a));
  });

  it('fails a task with the provider error, without retrying it', async () => {
    const a = await submitAndReceive('fail me');
    const ack = await report({
      taskId: a.taskId,
      attempt: a.attempt,
      lease: a.lease,
      workerId: WORKER,
      error: 'model said no',
      errorCode: 'provider_error',
    });
    expect(ack.accepted).toBe(true);
    const { body } = await api<TaskView>(master, `/api/tasks/${a.taskId}`);
    expect(body).toMatchObject({ state: 'failed', error: 'model said no' });
  });
});
