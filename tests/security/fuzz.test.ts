/**
 * Property-based fuzzing (fast-check, bounded runs) of every boundary a
 * stranger can write to: REST bodies, Socket.IO events, MQTT payloads on a
 * worker's own topics, gRPC messages (a worker's reports on its Connect
 * stream, and bytes that are no message at all). The property: every input
 * gets a clear error or a success — never a 5xx, never a dead process — and
 * a real task still completes afterwards.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { io as connectSocket, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadMasterPackage,
  type MasterAcks__Output,
  type MasterClient,
  type TaskAck__Output,
  type WorkerReport,
  type WorkerReport__Output,
} from '../../proto/src/grpc.ts';
import { RESULT_REJECT_REASONS } from '../../proto/src/schemas/codes.ts';
import {
  MAX_REPORTS_PER_MESSAGE,
  MAX_TASK_ID_CHARS,
  taskChunkMessageSchema,
  taskResultMessageSchema,
} from '../../proto/src/schemas/grpc.ts';
import { CLIENT_EVENT_NAMES } from '../../proto/src/socket-events.ts';
import { createTopics, workerClientId } from '../../proto/src/topics.ts';
import type { WorkerHandle } from '../../worker/src/main.ts';
import { startRedis } from '../helpers/redis-server.ts';
import { answerTo } from '../helpers/report-stream.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../integration/master/support.ts';
import {
  closeQuietly,
  connectAs,
  grpcClient,
  mqttConnect,
  workerMetadata,
} from './support/attacker.ts';

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

/** gRPC: fields of a worker's reports, with the garbage their types allow on the wire. */
const uint32 = fc.oneof(fc.constantFrom(0, 1, 2), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
const uint64 = fc.oneof(
  fc.nat(),
  fc.constant(Number.MAX_SAFE_INTEGER),
  fc.constant('18446744073709551615'),
);
const fencing = { taskId: fc.oneof(nasty, fc.constant('')), attempt: uint32, lease: nasty };
/** Fields that pass the schema: the report reaches fencing (and adoption) with a made-up attempt. */
const plausible = {
  taskId: fc.stringMatching(/^[a-z0-9-]{1,40}$/),
  attempt: fc.integer({ min: 1, max: 5 }),
  lease: fc.stringMatching(/^[a-z0-9.-]{1,60}$/),
};
const chunk = fc.oneof(
  fc.record({ ...fencing, seq: uint32, text: nasty }, { requiredKeys: [] }),
  fc.record({ ...plausible, seq: fc.nat(5), text: nasty }),
);
const result = fc.oneof(
  fc.record(
    {
      ...fencing,
      workerId: nasty,
      text: nasty,
      error: nasty,
      errorCode: nasty,
      usage: fc.record({ inputTokens: uint32, outputTokens: uint32 }, { requiredKeys: [] }),
      startedAt: uint64,
      finishedAt: uint64,
      processingMs: uint64,
      model: nasty,
    },
    { requiredKeys: [] },
  ),
  fc.record({ ...plausible, workerId: fc.constant('fuzz-worker'), text: nasty, model: nasty }),
);
/** One report: a chunk, a result, or neither (an empty oneof). */
const report: fc.Arbitrary<WorkerReport> = fc.oneof(
  chunk.map((c) => ({ chunk: c })),
  result.map((r) => ({ result: r })),
  fc.constant({}),
);
const bigResult: fc.Arbitrary<WorkerReport> = fc
  .integer({ min: 1, max: 5 })
  .map((attempt) => ({ result: { taskId: 'big', attempt, lease: 'l', text: 'x'.repeat(12_000) } }));

/** The master's receive limit (master/src/grpc/server.ts, grpc.max_receive_message_length). */
const MAX_RECEIVE_BYTES = 8 * 1024 * 1024;
const connect = loadMasterPackage().proto.flota.v1.Master.service.Connect;
/** The reports of one message as the master decodes them (its own deserializer on our bytes). */
const asMasterSees = (reports: WorkerReport[]): WorkerReport__Output[] =>
  connect.requestDeserialize(connect.requestSerialize({ reports })).reports;
/** Bytes for a Connect message: random ones, or a real message with bytes changed or cut off. */
const garbageBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 2_000 }).map((bytes) => Buffer.from(bytes)),
  fc
    .tuple(
      fc.array(report, { minLength: 1, maxLength: 4 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.option(fc.nat()),
    )
    .map(([reports, changes, cut]) => {
      const bytes = Buffer.from(connect.requestSerialize({ reports }));
      for (const [at, value] of changes) bytes[at % bytes.length] = value;
      return cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
    }),
);

/** An attempt as an answer names it: the task id cut to what an answer may carry. */
const attemptKey = (ref: { taskId: string; attempt: number }) =>
  `${ref.taskId.slice(0, MAX_TASK_ID_CHARS)}#${ref.attempt}`;
/** The class of a refusal: `bad_request`, `refused` (the result handler's), or the odd reason itself. */
const refusal = (reason: string) =>
  reason.startsWith('bad_request: ')
    ? 'bad_request'
    : (RESULT_REJECT_REASONS as readonly string[]).includes(reason)
      ? 'refused'
      : `unexpected reason ${JSON.stringify(reason)}`;
/** Matches the `n`th answer to a result (for ConnectStream.answer, which tries each answer once, in order). */
function nthFinal(n: number): (ack: TaskAck__Output) => boolean {
  let seen = 0;
  return (ack) => ack.final && ++seen === n;
}

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

  describe('gRPC: a Connect stream from an authenticated worker', () => {
    let client: MasterClient;
    const auth = { workerId: 'fuzz-worker', bearer: '' };
    let sentinels = 0;

    beforeAll(async () => {
      client = grpcClient(`127.0.0.1:${master.grpcPort}`);
      auth.bearer = await master.issueWorkerCredential('fuzz-worker');
    });
    afterAll(() => client?.close());

    /**
     * A well-formed result for an attempt the master does not know, sent after
     * the fuzzed reports: reports are handled in order, so once it is answered
     * every chunk before it has been answered or dropped.
     */
    const sentinel = (): WorkerReport => ({
      result: {
        taskId: `fuzz-sentinel-${++sentinels}`,
        attempt: 1,
        lease: 'not-a-lease',
        workerId: 'fuzz-worker',
        text: 'sentinel',
        model: 'echo',
      },
    });

    it('any reports, several messages on one stream: every result is answered, a chunk is refused or dropped, the stream goes on', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(report, { maxLength: 12 }), { minLength: 1, maxLength: 4 }),
          async (batches) => {
            const messages = [...batches, [sentinel()]];
            const seen = messages.flatMap((reports) => asMasterSees(reports));
            const stream = connectAs(client, auth, 15_000);
            for (const reports of messages) stream.write(reports);
            const results = seen.flatMap((r) => (r.result ? [r.result] : []));
            const all = await stream.answer(nthFinal(results.length));
            expect(all.error?.details, 'the stream ended before every result was answered').toBe(
              undefined,
            );
            stream.end();
            expect((await stream.ended).error?.details, 'a clean end after ours').toBe(undefined);

            // Every result: answered once, refused (no such attempt), as a bad request when malformed.
            const finals = stream.acks.filter((ack) => ack.final);
            expect(finals.every((ack) => !ack.accepted)).toBe(true);
            expect(finals.map((ack) => `${attemptKey(ack)} ${refusal(ack.reason)}`).sort()).toEqual(
              results
                .map((r) => {
                  const bad = !taskResultMessageSchema.safeParse(r).success;
                  return `${attemptKey(r)} ${bad ? 'bad_request' : 'refused'}`;
                })
                .sort(),
            );
            // Chunks: a malformed one is dropped; the first well-formed one of an attempt
            // the master does not know is refused (final: false), its later ones are dropped.
            const chunks = stream.acks.filter((ack) => !ack.final);
            expect(chunks.every((ack) => !ack.accepted)).toBe(true);
            expect(chunks.map((ack) => `${attemptKey(ack)} ${refusal(ack.reason)}`).sort()).toEqual(
              [
                ...new Set(
                  seen.flatMap((r) =>
                    r.chunk && taskChunkMessageSchema.safeParse(r.chunk).success
                      ? [attemptKey(r.chunk)]
                      : [],
                  ),
                ),
              ]
                .map((key) => `${key} refused`)
                .sort(),
            );
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
      await realTaskCompletes('after gRPC report fuzz');
    });

    it('a report carrying both a chunk and a result is the result (proto3: the last member of a oneof wins) and is answered', async () => {
      const both = {
        chunk: { taskId: 'both-chunk', attempt: 1, lease: 'not-a-lease', seq: 0, text: 'c' },
        result: {
          taskId: 'both-result',
          attempt: 1,
          lease: 'not-a-lease',
          workerId: 'fuzz-worker',
          text: 'r',
          model: 'echo',
        },
      };
      // What the master's own decoder makes of it: the oneof is set to the result.
      expect(asMasterSees([both])[0]?.report).toBe('result');
      const stream = connectAs(client, auth);
      stream.write([both]);
      stream.end();
      const answer = await answerTo(stream, both.result);
      expect((await stream.ended).error?.details).toBe(undefined);
      expect(
        answer.reply,
        `the master answers the result (its answers: ${JSON.stringify(stream.acks)})`,
      ).toMatchObject({
        taskId: 'both-result',
        attempt: 1,
        accepted: false,
        final: true,
      });
    });

    it(`a message with more than ${MAX_REPORTS_PER_MESSAGE} reports ends its stream with INVALID_ARGUMENT and none of it is handled; one at the bound is served`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              { arbitrary: report, weight: 9 },
              // Big enough that a full batch of them is over the receive limit.
              { arbitrary: bigResult, weight: 1 },
            ),
            { minLength: 1, maxLength: 6 },
          ),
          fc.oneof(
            fc.integer({ min: MAX_REPORTS_PER_MESSAGE - 2, max: MAX_REPORTS_PER_MESSAGE }),
            fc.integer({ min: MAX_REPORTS_PER_MESSAGE + 1, max: 2 * MAX_REPORTS_PER_MESSAGE }),
          ),
          async (pool, count) => {
            const reports = Array.from({ length: count }, (_, i) => pool[i % pool.length]!);
            const bytes = connect.requestSerialize({ reports }).length;
            const stream = connectAs(client, auth, 30_000);
            stream.write(reports);
            if (bytes > MAX_RECEIVE_BYTES || count > MAX_REPORTS_PER_MESSAGE) {
              const { error } = await stream.ended;
              expect(error?.code, `${count} reports, ${bytes} bytes: ${error?.details}`).toBe(
                bytes > MAX_RECEIVE_BYTES
                  ? grpc.status.RESOURCE_EXHAUSTED
                  : grpc.status.INVALID_ARGUMENT,
              );
              expect(stream.acks).toEqual([]);
              return;
            }
            // We are done: the master answers what is pending, then ends the stream cleanly.
            stream.end();
            expect((await stream.ended).error?.details).toBe(undefined);
            const results = asMasterSees(reports).filter((r) => r.result).length;
            expect(stream.acks.filter((ack) => ack.final)).toHaveLength(results);
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
      await realTaskCompletes('after oversized gRPC batches');
    });

    it('any bytes as a message: undecodable ones end the stream with INTERNAL, decodable ones are served', async () => {
      await fc.assert(
        fc.asyncProperty(garbageBytes, async (bytes) => {
          let decodable = true;
          try {
            connect.requestDeserialize(bytes);
          } catch {
            decodable = false;
          }
          const call = client.makeBidiStreamRequest<Buffer, MasterAcks__Output>(
            connect.path,
            (raw) => raw,
            connect.responseDeserialize,
            workerMetadata(auth),
            { deadline: Date.now() + 15_000 },
          );
          const last = sentinel();
          const acks: TaskAck__Output[] = [];
          call.on('data', (message: MasterAcks__Output) => acks.push(...message.acks));
          const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
            call.on('error', (err: grpc.ServiceError) => resolve(err));
            call.on('end', () => resolve(undefined));
          });
          call.write(bytes);
          call.write(connect.requestSerialize({ reports: [last] }));
          call.end();
          const error = await ended;
          if (decodable) {
            expect(error?.details).toBe(undefined);
            expect(acks.some((ack) => ack.final && ack.taskId === last.result?.taskId)).toBe(true);
          } else {
            expect(error?.code).toBe(grpc.status.INTERNAL);
          }
        }),
        { numRuns: RUNS, seed: SEED },
      );
      expect((await api(master, '/healthz')).status).toBe(200);
      await realTaskCompletes('after gRPC byte fuzz');
    });
  });
});
