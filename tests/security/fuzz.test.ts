/**
 * Property-based fuzzing (fast-check, bounded runs) of every boundary a
 * stranger can write to: REST bodies, Socket.IO events, MQTT payloads on a
 * worker's own topics, gRPC messages. The property: every input gets a clear
 * error or a success — never a 5xx, never a dead process — and a real task
 * still completes afterwards.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { io as connectSocket, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadMasterPackage,
  type MasterClient,
  METADATA_AUTHORIZATION,
  METADATA_WORKER_ID,
} from '../../proto/src/grpc.ts';
import { CLIENT_EVENT_NAMES } from '../../proto/src/socket-events.ts';
import { createTopics, workerClientId } from '../../proto/src/topics.ts';
import type { WorkerHandle } from '../../worker/src/main.ts';
import { startRedis } from '../helpers/redis-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../integration/master/support.ts';
import { closeQuietly, mqttConnect } from './support/attacker.ts';

const RUNS = Number(process.env.FLOTA_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.FLOTA_FUZZ_SEED ?? Date.now() % 2_147_483_647);

let redis: Awaited<ReturnType<typeof startRedis>>;
let master: Awaited<ReturnType<typeof startTestMaster>>;
let worker: WorkerHandle;

/** Strings with what breaks naive code: NUL, lone surrogates, huge, unicode, JSON-ish. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '\u0000',
    '\ud800',
    'a\udfffb',
    '__proto__',
    'constructor',
    '',
    ' ',
    '💥',
    '{"a":1}',
  ),
  fc.string({ maxLength: 5 }).map((s) => s.repeat(2_000)),
);
const anyValue = fc.oneof(
  { depthSize: 'small' },
  nasty,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(nasty, fc.anything({ maxDepth: 2 }), { maxKeys: 4 }),
);
/** A submission with any field possibly replaced by something else. */
const submission = fc.record(
  {
    prompt: fc.oneof(nasty, anyValue),
    model: fc.oneof(fc.constant('echo'), nasty, anyValue),
    priority: fc.oneof(fc.integer({ min: -5, max: 2_000 }), anyValue),
    requires: fc.oneof(
      fc.record(
        { gpu: fc.boolean(), labels: fc.dictionary(nasty, nasty, { maxKeys: 3 }) },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    params: fc.oneof(
      fc.record({ temperature: fc.double(), maxTokens: fc.integer() }, { requiredKeys: [] }),
      anyValue,
    ),
    messages: fc.oneof(
      fc.array(
        fc.record({
          role: fc.oneof(fc.constantFrom('user', 'assistant', 'system'), nasty),
          content: nasty,
        }),
        { maxLength: 3 },
      ),
      anyValue,
    ),
    timeoutMs: fc.oneof(fc.integer(), anyValue),
    cache: anyValue,
    extra: anyValue,
  },
  { requiredKeys: [] },
);

async function realTaskCompletes(prompt: string): Promise<void> {
  const res = await api<{ id: string }>(master, '/api/tasks', { body: { prompt } });
  expect(res.status).toBe(202);
  await waitFor(
    async () => {
      const view = await api<{ state: string; result?: string }>(
        master,
        `/api/tasks/${res.body.id}`,
      );
      return view.body.state === 'completed' ? view.body : undefined;
    },
    { what: `a real task after the fuzz (${prompt})` },
  );
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url, env: { RATE_LIMIT_RPM: '0' } });
  worker = await startTestWorker(master, { WORKER_ID: 'fuzz-worker', SLOTS: '4' });
  await realTaskCompletes('warm-up');
});

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await redis?.stop();
});

describe(`fuzz (seed ${SEED}, ${RUNS} runs each)`, () => {
  it('REST: any body to any task route is answered below 500', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'POST /api/tasks',
          'PATCH /api/tasks/x',
          'POST /api/workers/w-1/credential',
        ),
        fc.oneof(submission, anyValue),
        fc.option(nasty),
        async (route, body, rawText) => {
          const [method, path] = route.split(' ') as [string, string];
          const res = await fetch(`${master.httpUrl}${path}`, {
            method,
            headers: { 'content-type': 'application/json' },
            body: rawText ?? JSON.stringify(body),
          });
          const text = await res.text();
          expect(res.status, `${route} ${text.slice(0, 200)}`).toBeLessThan(500);
          if (res.status >= 400) expect(JSON.parse(text).error).toEqual(expect.any(String));
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
    await realTaskCompletes('after REST fuzz');
  });

  it('Socket.IO: any event with any payload gets an error or is ignored; the server lives', async () => {
    const socket: Socket = connectSocket(master.httpUrl, {
      transports: ['websocket'],
      reconnection: true,
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...CLIENT_EVENT_NAMES), nasty),
        fc.oneof(submission, anyValue),
        async (event, payload) => {
          if (!socket.connected)
            await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
          const reply = await socket
            .timeout(1_000)
            .emitWithAck(event, payload)
            .catch(() => 'no-ack');
          // An ack, when there is one, is an object (an error or a result), never a crash.
          if (reply !== 'no-ack') expect(typeof reply).toBe('object');
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
    socket.close();
    await realTaskCompletes('after Socket.IO fuzz');
  });

  it("MQTT: any payload on a worker's own topics is dropped, the master lives", async () => {
    const topics = createTopics(master.config.MQTT_PREFIX);
    const id = 'fuzz-rogue';
    const { client } = await mqttConnect(master.mqttUrl, {
      clientId: workerClientId(id),
      username: id,
      password: await master.issueWorkerCredential(id),
    });
    expect(client).toBeDefined();
    if (!client) return;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(topics.status(id), topics.heartbeat(id), topics.log(id)),
        fc.oneof(
          fc.uint8Array({ maxLength: 2_000 }).map((a) => Buffer.from(a)),
          anyValue.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
        ),
        async (topic, payload) => {
          await client.publishAsync(topic, payload, { qos: 1 }).catch(() => undefined);
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
    await closeQuietly(client);
    expect((await api(master, '/healthz')).status).toBe(200);
    await realTaskCompletes('after MQTT fuzz');
  });

  it('gRPC: any message from an authenticated worker gets an ack or a status, never a crash', async () => {
    const { proto } = loadMasterPackage();
    const client: MasterClient = new proto.flota.v1.Master(
      `127.0.0.1:${master.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const credential = await master.issueWorkerCredential('fuzz-worker');
    const metadata = () => {
      const m = new grpc.Metadata();
      m.set(METADATA_WORKER_ID, 'fuzz-worker');
      m.set(METADATA_AUTHORIZATION, `Bearer ${credential}`);
      return m;
    };
    const message = fc.record(
      {
        taskId: fc.oneof(nasty, fc.constant('')),
        attempt: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        lease: nasty,
        seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        text: nasty,
        workerId: nasty,
        error: nasty,
        errorCode: nasty,
        model: nasty,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(message, fc.boolean(), async (m, stream) => {
        const outcome = await new Promise<string>((resolve) => {
          const done = (err: grpc.ServiceError | null) =>
            resolve(err ? `status ${err.code}` : 'ack');
          if (!stream) {
            client.ReportResult(m, metadata(), { deadline: Date.now() + 5_000 }, done);
            return;
          }
          const call = client.StreamTask(metadata(), { deadline: Date.now() + 5_000 }, done);
          call.write(m);
          call.write({ ...m, final: m });
          call.end();
        });
        expect(outcome).toMatch(/^(ack|status \d+)$/);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    client.close();
    await realTaskCompletes('after gRPC fuzz');
  });
});
