/**
 * A worker with a valid credential of its own, holding another worker's
 * lease (leaked somehow), cannot answer for it: not as itself (the master
 * refuses leases a worker does not hold), not as the other worker (its
 * credential names it). The user sees only the genuine answer.
 */
import * as grpc from '@grpc/grpc-js';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { MasterClient } from '../../../proto/src/grpc.ts';
import type { Assignment, TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { SessionClient } from '../master/session-client.ts';
import { api, startTestMaster } from '../master/support.ts';
import { answerTo, openStream, rawClient, reportResult, workerMetadata } from './support.ts';

const topics = createTopics();
const OWNER = 'owner-1';
const THIEF = 'thief-1';
const MODEL = 'fence-model';

/** A hand-written worker on MQTT: logs in as itself, announces itself, collects its assignments. */
async function rawWorker(master: MasterHandle, id: string, credential: string) {
  const assignments: Assignment[] = [];
  const client: MqttClient = await mqtt.connectAsync(master.mqttUrl, {
    clientId: workerClientId(id),
    username: id,
    password: credential,
    will: {
      topic: topics.status(id),
      payload: Buffer.from(JSON.stringify({ state: 'offline', id })),
      retain: true,
      qos: 1,
    },
  });
  client.on('message', (_topic, payload) => assignments.push(JSON.parse(payload.toString())));
  await client.subscribeAsync(topics.tasks(id), { qos: 1 });
  await client.publishAsync(
    topics.status(id),
    JSON.stringify({
      state: 'online',
      id,
      kind: 'cpu',
      models: [MODEL],
      providers: ['echo'],
      slots: 1,
      labels: {},
      version: 'raw',
      host: 'test',
      startedAt: Date.now(),
    }),
    { retain: true, qos: 1 },
  );
  return { client, assignments };
}

describe('a forged result with a leaked lease', () => {
  let redis: RedisServer;
  let master: MasterHandle;
  let owner: Awaited<ReturnType<typeof rawWorker>>;
  let ownerCredential: string;
  let thiefCredential: string;
  let grpcClient: MasterClient;
  let session: SessionClient;

  beforeAll(async () => {
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url });
    ownerCredential = await master.issueWorkerCredential(OWNER);
    thiefCredential = await master.issueWorkerCredential(THIEF);
    owner = await rawWorker(master, OWNER, ownerCredential);
    grpcClient = rawClient(`127.0.0.1:${master.grpcPort}`);
    session = new SessionClient(master.httpUrl, 'forgery-victim');
    await waitFor(
      async () => {
        const { body } = await api<{ workers: Array<{ id: string; state: string }> }>(
          master,
          '/api/workers',
        );
        return body.workers.some((w) => w.id === OWNER && w.state === 'online');
      },
      { what: 'the owner online' },
    );
  });

  afterAll(async () => {
    session?.close();
    grpcClient?.close();
    await owner?.client.endAsync();
    await master?.close();
    await redis?.stop();
  });

  it('is refused as the thief and as the owner; the user sees only the genuine answer', async () => {
    const taskId = await session.submit('a private question', { model: MODEL });
    const a = await waitFor(() => owner.assignments.find((x) => x.taskId === taskId), {
      what: 'the assignment',
    });
    const fence = { taskId, attempt: a.attempt, lease: a.lease };
    const forged = { ...fence, workerId: OWNER, text: 'FORGED', model: MODEL };

    // As itself: its credential is good, the lease is not its own.
    const asThief = workerMetadata(THIEF, thiefCredential);
    const notOwner = (final: boolean) => ({
      accepted: false,
      reason: 'not_lease_owner',
      taskId,
      attempt: a.attempt,
      final,
    });
    expect((await reportResult(grpcClient, forged, asThief)).reply).toEqual(notOwner(true));
    // Chunks and the result on one stream: the chunk is refused (and the attempt's later chunks
    // with it), the result is answered on its own.
    const streamed = openStream(grpcClient, asThief, [
      { chunk: { ...fence, seq: 0, text: 'FORGED chunk' } },
      { chunk: { ...fence, seq: 1, text: 'FORGED again' } },
      { result: forged },
    ]);
    expect((await answerTo(streamed, forged)).reply).toEqual(notOwner(true));
    expect(streamed.acks).toEqual([notOwner(false), notOwner(true)]);
    streamed.end();
    expect(await streamed.ended).toEqual({});

    // As the owner, with its own credential: the credential names the thief.
    const asOwner = workerMetadata(OWNER, thiefCredential);
    const impostor = await reportResult(grpcClient, forged, asOwner);
    expect(impostor.error?.code).toBe(grpc.status.PERMISSION_DENIED);

    // The owner's genuine answer goes through.
    const genuine = await reportResult(
      grpcClient,
      { ...fence, workerId: OWNER, text: 'the genuine answer', model: MODEL },
      workerMetadata(OWNER, ownerCredential),
    );
    expect(genuine.reply).toEqual({
      accepted: true,
      reason: '',
      taskId,
      attempt: a.attempt,
      final: true,
    });

    const done = await session.waitTerminal(taskId);
    expect(done.name).toBe('task:completed');
    expect(JSON.stringify(session.accepted)).not.toContain('FORGED');
    const { body } = await api<TaskView>(master, `/api/tasks/${taskId}`, {
      headers: { 'x-flota-session': 'forgery-victim' },
    });
    expect(body).toMatchObject({
      state: 'completed',
      result: 'the genuine answer',
      workerId: OWNER,
    });
  });
});
