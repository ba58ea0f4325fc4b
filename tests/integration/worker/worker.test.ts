import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/logger.ts';
import type { Assignment } from '../../../proto/src/schemas/task.ts';
import { heartbeatSchema, workerStatusSchema } from '../../../proto/src/schemas/worker.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import {
  type FakeModelServer,
  startFakeModelServer,
} from '../../unit/worker/support/fake-model-server.ts';
import { LogSink, startBroker, startMaster, type TestBroker, type TestMaster } from './support.ts';

const suffix = randomBytes(4).toString('hex');
const prefix = `test-${suffix}/v1`;
const topics = createTopics(prefix);

interface Message {
  topic: string;
  json: Record<string, unknown>;
  retain: boolean;
}

let broker: TestBroker;
let master: TestMaster;
let models: FakeModelServer;
let observer: MqttClient;
const messages: Message[] = [];
const echoSink = new LogSink();
let echoWorker: WorkerHandle;
const echoId = `cpu-echo-${suffix}`;

function env(extra: Record<string, string>) {
  return {
    MQTT_URL: broker.url,
    MQTT_PREFIX: prefix,
    MASTER_GRPC: master.address,
    // The test master takes any credential; the real one's checks are tested under tests/integration/grpc.
    WORKER_TOKEN: 'test-credential',
    HEARTBEAT_MS: '100',
    LOG_LEVEL: 'debug',
    ...extra,
  };
}

function assign(workerId: string, overrides: Partial<Assignment> = {}): Assignment {
  const taskId = `task-${randomBytes(4).toString('hex')}`;
  const assignment: Assignment = {
    taskId,
    attempt: 1,
    lease: `lease-${taskId}`,
    model: 'echo',
    prompt: 'hi',
    params: {},
    deadline: Date.now() + 30_000,
    queuedAt: Date.now(),
    ...overrides,
  };
  observer.publish(topics.tasks(workerId), JSON.stringify(assignment), { qos: 1 });
  return assignment;
}

const statusOf = (id: string) =>
  messages.filter((m) => m.topic === topics.status(id)).map((m) => m.json);

beforeAll(async () => {
  [broker, master, models] = await Promise.all([
    startBroker(),
    startMaster(),
    startFakeModelServer(),
  ]);
  observer = mqtt.connect(broker.url, { clientId: `observer-${suffix}` });
  observer.on('message', (topic, payload, packet) => {
    // The observer also sees the deliberately malformed assignments: keep JSON only.
    try {
      messages.push({ topic, json: JSON.parse(payload.toString()), retain: packet.retain });
    } catch {}
  });
  await observer.subscribeAsync(`${prefix}/#`, { qos: 1 });
  echoWorker = await startWorker(
    loadWorkerConfig(
      env({
        WORKER_ID: echoId,
        ECHO_DELAY_MS: '20',
        ECHO_CHUNK_SIZE: '2',
        SLOTS: '2',
        LABELS: 'zone=test',
      }),
    ),
    { logger: createLogger({ source: echoId, level: 'debug', destination: echoSink }) },
  );
});

afterAll(async () => {
  await echoWorker?.close();
  await observer?.endAsync();
  await Promise.all([broker?.close(), master?.close(), models?.close()]);
});

describe('worker over MQTT + gRPC', () => {
  it('publishes a retained online status that a late subscriber receives', async () => {
    const late = mqtt.connect(broker.url, { clientId: `late-${suffix}` });
    const retained: Array<{ json: unknown; retain: boolean }> = [];
    late.on('message', (_t, payload, packet) =>
      retained.push({ json: JSON.parse(payload.toString()), retain: packet.retain }),
    );
    await late.subscribeAsync(topics.status(echoId), { qos: 1 });
    const first = await waitFor(() => retained[0], { what: 'retained status' });
    await late.endAsync();
    expect(first.retain).toBe(true);
    const status = workerStatusSchema.parse(first.json);
    expect(status).toMatchObject({
      state: 'online',
      id: echoId,
      kind: 'cpu',
      models: ['echo'],
      providers: ['echo'],
      slots: 2,
      labels: { zone: 'test' },
      version: '0.1.0',
    });
  });

  it('sends heartbeats with the contract shape', async () => {
    const beats = await waitFor(
      () => {
        const found = messages.filter((m) => m.topic === topics.heartbeat(echoId));
        return found.length >= 2 ? found : undefined;
      },
      { what: 'two heartbeats' },
    );
    const heartbeat = heartbeatSchema.parse(beats[1]?.json);
    expect(heartbeat).toMatchObject({ id: echoId, freeSlots: 2, active: [], draining: false });
    expect(heartbeat.mem.totalMb).toBeGreaterThan(0);
  });

  it('streams chunks and a final result with the matching lease', async () => {
    const a = assign(echoId, { prompt: 'hello there' });
    const stream = await waitFor(() => master.attempts.find((s) => s.final?.taskId === a.taskId), {
      what: 'final result',
    });
    expect(stream.workerId).toBe(echoId);
    expect(stream.chunks.map((c) => c.seq)).toEqual(stream.chunks.map((_, i) => i));
    expect(stream.chunks.every((c) => c.lease === a.lease && c.attempt === 1)).toBe(true);
    expect(stream.chunks.map((c) => c.text).join('')).toBe('echo: hello there');
    expect(stream.final).toMatchObject({
      lease: a.lease,
      workerId: echoId,
      text: 'echo: hello there',
      error: '',
      model: 'echo',
    });
    expect(stream.final?.processingMs).toBeGreaterThan(0);
    await waitFor(() => echoSink.has('master accepted the result'), { what: 'accepted log' });
  });

  it('cancel stops a slow task with error code cancelled', async () => {
    const a = assign(echoId, { prompt: 'x'.repeat(400) });
    await waitFor(() => master.attempts.find((s) => s.chunks[0]?.taskId === a.taskId), {
      what: 'first chunk',
    });
    observer.publish(topics.control(echoId), JSON.stringify({ type: 'cancel', taskId: a.taskId }), {
      qos: 1,
    });
    const final = await waitFor(() => master.results().find((r) => r.taskId === a.taskId), {
      what: 'cancelled result',
    });
    expect(final).toMatchObject({ errorCode: 'cancelled', lease: a.lease });
  });

  it('answers an unsupported model instead of dropping it', async () => {
    const a = assign(echoId, { model: 'gpt-unknown' });
    const result = await waitFor(() => master.results().find((r) => r.taskId === a.taskId), {
      what: 'refusal',
    });
    expect(result.errorCode).toBe('model_unsupported');
  });

  it('drops malformed assignments with a log line and keeps serving', async () => {
    const tasks = topics.tasks(echoId);
    const before = echoSink.lines.length;
    observer.publish(tasks, 'this is {not json', { qos: 1 });
    observer.publish(tasks, JSON.stringify({ taskId: 42, prompt: [] }), { qos: 1 });
    observer.publish(tasks, JSON.stringify({ pad: 'y'.repeat(3 * 1024 * 1024) }), { qos: 1 });
    await waitFor(
      () => {
        const recent = echoSink.lines.slice(before).map((l) => l.msg);
        return (
          recent.includes('mqtt message dropped: not JSON') &&
          recent.includes('mqtt message dropped: invalid') &&
          recent.some((msg) => String(msg).startsWith('mqtt message dropped: too large'))
        );
      },
      { what: 'three drop log lines' },
    );
    const a = assign(echoId, { prompt: 'still alive' });
    const result = await waitFor(() => master.results().find((r) => r.taskId === a.taskId), {
      what: 'result after garbage',
    });
    expect(result.text).toBe('echo: still alive');
  });

  it('republishes its log lines on logs/{id}', async () => {
    const line = await waitFor(
      () => messages.find((m) => m.topic === topics.log(echoId) && m.json.msg === 'task started'),
      { what: 'log line over MQTT' },
    );
    expect(line.json).toMatchObject({ source: echoId, level: 'info' });
  });

  it('publishes its Last Will when the connection dies, then comes back online', async () => {
    const seenBefore = statusOf(echoId).length;
    // aedes keeps connected clients by id; its type declarations do not list the map.
    const clients = (
      broker.broker as unknown as { clients: Record<string, { conn: { destroy(): void } }> }
    ).clients;
    const client = clients[workerClientId(echoId)];
    expect(client).toBeDefined();
    client?.conn.destroy();
    const lost = await waitFor(
      () =>
        statusOf(echoId)
          .slice(seenBefore)
          .find((s) => s.state === 'offline'),
      { what: 'last will' },
    );
    expect(lost).toEqual({ state: 'offline', id: echoId, reason: 'lost' });
    await waitFor(
      () =>
        statusOf(echoId)
          .slice(seenBefore)
          .find((s) => s.state === 'online'),
      { what: 'online again after reconnect' },
    );
    const a = assign(echoId, { prompt: 'after reconnect' });
    const result = await waitFor(() => master.results().find((r) => r.taskId === a.taskId), {
      what: 'result after reconnect',
    });
    expect(result.text).toBe('echo: after reconnect');
  });

  it('runs Gemini through the real SDK against a local server, streaming', async () => {
    const id = `gpu-gemini-${suffix}`;
    const gemini = await startWorker(
      loadWorkerConfig(
        env({
          WORKER_ID: id,
          WORKER_KIND: 'gpu',
          PROVIDER: 'gemini',
          GEMINI_API_KEY: 'worker-gemini-key-123',
          GEMINI_BASE_URL: models.url,
        }),
      ),
      { logger: createLogger({ source: id, level: 'silent', destination: new LogSink() }) },
    );
    try {
      models.mode = 'ok';
      const a = assign(id, { model: 'gemini-2.5-flash', prompt: 'greet' });
      const stream = await waitFor(
        () => master.attempts.find((s) => s.final?.taskId === a.taskId),
        {
          what: 'gemini result',
        },
      );
      // Pieces streamed within CHUNK_COALESCE_MS travel joined: the text, in order, once.
      expect(stream.chunks.map((c) => c.text).join('')).toBe(models.pieces.join(''));
      expect(stream.chunks.map((c) => c.seq)).toEqual(stream.chunks.map((_, i) => i));
      expect(stream.final).toMatchObject({ text: models.pieces.join(''), error: '' });
      expect(stream.final?.usage).toEqual({ inputTokens: 3, outputTokens: 5, estimated: false });
      const request = models.requests.at(-1);
      expect(request?.url).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
      expect(request?.headers['x-goog-api-key']).toBe('worker-gemini-key-123');

      models.mode = 'status-401';
      const bad = assign(id, { model: 'gemini-2.5-flash', apiKey: 'user-key-abcdef' });
      const failed = await waitFor(() => master.results().find((r) => r.taskId === bad.taskId), {
        what: 'gemini failure',
      });
      expect(failed.errorCode).toBe('provider_error');
      expect(failed.error).toContain('401');
      expect(failed.error).not.toContain('user-key-abcdef');
    } finally {
      models.mode = 'ok';
      await gemini.close();
    }
  });

  it('clean close publishes offline with reason shutdown', async () => {
    const seenBefore = statusOf(echoId).length;
    await echoWorker.close();
    await echoWorker.close();
    const offline = await waitFor(
      () =>
        statusOf(echoId)
          .slice(seenBefore)
          .find((s) => s.state === 'offline'),
      { what: 'shutdown status' },
    );
    expect(offline).toEqual({ state: 'offline', id: echoId, reason: 'shutdown' });
    expect(echoSink.has('worker stopped')).toBe(true);
  });
});
