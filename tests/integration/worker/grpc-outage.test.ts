/**
 * The worker's gRPC link (worker/src/grpc-link.ts) against a test master: its
 * Connect stream carries several attempts' reports and brings back their
 * answers; a result left unanswered when the stream breaks, or answered
 * `store_unavailable`, is sent again; a refused chunk stops its attempt.
 *
 * A worker whose master was unreachable for a long time (a network cut, a
 * master restarting slowly) must deliver its result as soon as the master is
 * back. grpc-js alone would by then wait up to 120 s between dials; the
 * worker's channel caps that at 2 s (GRPC_CHANNEL_OPTIONS).
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskAck__Output, TaskResult } from '../../../proto/src/grpc.ts';
import { MAX_REPORTS_PER_MESSAGE } from '../../../proto/src/schemas/grpc.ts';
import {
  createResultReporter,
  REPORT_GRACE_MS,
  type ResultReporter,
} from '../../../worker/src/grpc-link.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { ACCEPT, DROP, fail, refuse, startMaster, type TestMaster } from './support.ts';

/**
 * Dials after which grpc-js's default backoff (1 s, ×1.6 per failure) waits
 * more than 10 s before the next one; with the cap the worker gets there in
 * about 12 s.
 */
const DIALS = 10;

/** A master host whose gRPC port accepts TCP and drops it at once: every dial fails, and is counted. */
async function startDeadEnd() {
  const dials: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    dials.push(Date.now());
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    dials,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let reporter: ResultReporter | undefined;
let master: TestMaster | undefined;
afterEach(async () => {
  reporter?.close();
  await master?.close();
  reporter = undefined;
  master = undefined;
});

describe('worker gRPC link after a long outage', () => {
  it('keeps dialling an absent master and delivers its result within seconds of its return', async () => {
    const deadEnd = await startDeadEnd();
    reporter = createResultReporter({
      address: `127.0.0.1:${deadEnd.port}`,
      workerId: 'outage-worker',
      credential: 'outage-worker-credential',
      channelCredentials: grpc.credentials.createInsecure(),
      log: pino({ level: 'silent' }),
    });
    let ack: TaskAck__Output | undefined;
    let settled = false;
    const delivered = reporter
      .report(
        {
          taskId: 'task-outage',
          attempt: 1,
          lease: 'lease-1',
          workerId: 'outage-worker',
          text: 'done',
        },
        Date.now() + 120_000,
      )
      .then((value) => {
        ack = value;
        settled = true;
      });

    await waitFor(() => deadEnd.dials.length >= DIALS, {
      what: `${DIALS} dials to the absent master`,
      timeoutMs: 30_000,
    });
    const gaps = deadEnd.dials.slice(1).map((at, i) => at - (deadEnd.dials[i] as number));
    // The cap (2 s, up to 20 % jitter) plus the reporter's own wait before it reopens the stream (up to 2 s).
    expect(Math.max(...gaps)).toBeLessThan(4_500);

    await deadEnd.close();
    master = await startMaster(deadEnd.port);
    const backAt = Date.now();
    await waitFor(() => settled, {
      what: 'the result to reach the returned master',
      timeoutMs: 6_000,
    });
    await delivered;
    expect(ack?.accepted).toBe(true);
    expect(master.deliveries.map((d) => d.result.taskId)).toEqual(['task-outage']);
    expect(Date.now() - backAt).toBeLessThan(6_000);
  }, 60_000);
});

describe('worker gRPC link behind a dial that never ends', () => {
  it('dials again on a new channel, and delivers, when a dial neither connects nor fails', async () => {
    master = await startMaster();
    const target = Number(master.address.split(':').pop());
    // The first connection is taken and never answered (as a vanished master's
    // address that drops packets leaves a dial waiting); later ones reach the master.
    const held = new Set<net.Socket>();
    const pipes = new Set<net.Socket>();
    let dials = 0;
    const front = net.createServer((socket) => {
      dials += 1;
      if (dials === 1) {
        held.add(socket);
        socket.on('error', () => undefined);
        return;
      }
      const back = net.connect(target, '127.0.0.1');
      pipes.add(socket).add(back);
      socket.on('error', () => back.destroy());
      back.on('error', () => socket.destroy());
      socket.pipe(back).pipe(socket);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const { port } = front.address() as net.AddressInfo;
    try {
      reporter = createResultReporter({
        address: `127.0.0.1:${port}`,
        workerId: WORKER_ID,
        credential: 'link-worker-credential',
        channelCredentials: grpc.credentials.createInsecure(),
        dialTimeoutMs: 1_000,
        log: pino({ level: 'silent' }),
      });
      const r = result();
      const started = Date.now();
      expect(await reporter.report(r, inAMinute())).toEqual(answerFor(r));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(dials).toBe(2);
      expect(master.deliveries.map((d) => d.result.taskId)).toEqual([r.taskId]);
    } finally {
      for (const socket of [...held, ...pipes]) socket.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });
});

const WORKER_ID = 'link-worker';

function connectReporter(address: string, coalesceMs?: number): ResultReporter {
  reporter = createResultReporter({
    address,
    workerId: WORKER_ID,
    credential: 'link-worker-credential',
    channelCredentials: grpc.credentials.createInsecure(),
    coalesceMs,
    log: pino({ level: 'silent' }),
  });
  return reporter;
}

let seq = 0;
function result(overrides: Partial<TaskResult> = {}): TaskResult {
  seq += 1;
  return {
    taskId: `task-${seq}`,
    attempt: 1,
    lease: `lease-${seq}`,
    workerId: WORKER_ID,
    text: `answer ${seq}`,
    ...overrides,
  };
}

const inAMinute = () => Date.now() + 60_000;

/** What the master answers a result with: accepted, or why not. */
const answerFor = (r: TaskResult, reason = '') => ({
  accepted: reason === '',
  reason,
  taskId: r.taskId,
  attempt: r.attempt,
  final: true,
});

describe('worker gRPC link on one Connect stream', () => {
  it("carries several attempts' chunks and results on one stream and takes each answer back", async () => {
    master = await startMaster();
    const link = connectReporter(master.address);
    const refs = [1, 2].map((n) => ({
      taskId: `streamed-${n}`,
      attempt: n,
      lease: `lease-streamed-${n}`,
      deadline: inAMinute(),
    }));
    const [one, two] = refs.map((ref) => link.openStream(ref));
    one?.write('a');
    two?.write('x');
    one?.write('b');
    two?.write('y');
    const finals = refs.map((ref) =>
      result({ taskId: ref.taskId, attempt: ref.attempt, lease: ref.lease }),
    );
    const others = [result(), result({ attempt: 3 })];
    const acks = await Promise.all([
      one?.finish(finals[0] as TaskResult),
      two?.finish(finals[1] as TaskResult),
      ...others.map((r) => link.report(r, inAMinute())),
    ]);

    expect(acks).toEqual([...finals, ...others].map((r) => answerFor(r)));
    expect(master.connections).toHaveLength(1);
    expect(master.connections[0]).toMatchObject({
      workerId: WORKER_ID,
      authorization: 'Bearer link-worker-credential',
      open: true,
    });
    // What one turn of the event loop gathered leaves together.
    expect(master.connections[0]?.messages).toBe(1);
    for (const [i, ref] of refs.entries()) {
      const attempt = master.attempts.find((a) => a.taskId === ref.taskId);
      expect(attempt?.chunks.map((c) => [c.seq, c.text, c.lease, c.attempt])).toEqual(
        (i === 0 ? ['a', 'b'] : ['x', 'y']).map((text, n) => [n, text, ref.lease, ref.attempt]),
      );
      expect(attempt?.final).toMatchObject({ taskId: ref.taskId, lease: ref.lease });
    }
    expect(master.deliveries).toHaveLength(4);
  });

  it("joins an attempt's pieces of one coalescing window into one chunk, sent ahead of its result", async () => {
    master = await startMaster();
    // A window longer than the first attempt takes: only its result's flush sends its held text.
    const link = connectReporter(master.address, 200);
    const ref = (taskId: string) => ({
      taskId,
      attempt: 1,
      lease: `lease-${taskId}`,
      deadline: inAMinute(),
    });
    const finishing = link.openStream(ref('joined'));
    const waiting = link.openStream(ref('held'));
    for (const piece of ['a ', 'to', 'k', 'ens']) finishing.write(piece);
    for (const piece of ['now', ' and ', 'later']) waiting.write(piece);
    let chunksAtResult: string[] | undefined;
    master.behaviour = {
      result: (r) => {
        const attempt = master?.attempts.find((a) => a.taskId === r.taskId);
        chunksAtResult = attempt?.chunks.map((c) => `${c.seq}:${c.text}`);
        return ACCEPT;
      },
    };
    const final = result({ taskId: 'joined', lease: 'lease-joined' });
    expect(await finishing.finish(final)).toEqual(answerFor(final));
    // The first piece went at once (nothing of its attempt was sent before), the rest joined.
    expect(chunksAtResult).toEqual(['0:a ', '1:tokens']);
    expect(finishing.chunks).toBe(4);

    // The other attempt's held text goes when the window ends, as one chunk.
    const held = await waitFor(
      () => master?.attempts.find((a) => a.taskId === 'held' && a.chunks.length > 1),
      { what: 'the held chunk' },
    );
    expect(held.chunks.map((c) => [c.seq, c.text])).toEqual([
      [0, 'now'],
      [1, ' and later'],
    ]);
  });

  it('splits a burst larger than one message may carry over several messages, in order', async () => {
    master = await startMaster();
    const link = connectReporter(master.address);
    const ref = { taskId: 'burst', attempt: 1, lease: 'lease-burst', deadline: inAMinute() };
    const stream = link.openStream(ref);
    const count = MAX_REPORTS_PER_MESSAGE + 100;
    for (let i = 0; i < count; i += 1) stream.write(`${i} `);
    const final = result({ taskId: ref.taskId, lease: ref.lease });
    expect(await stream.finish(final)).toEqual(answerFor(final));
    // More would have ended the stream with INVALID_ARGUMENT.
    expect(master.connections).toHaveLength(1);
    expect(master.connections[0]?.messages).toBe(2);
    const chunks = master.attempts.find((a) => a.taskId === 'burst')?.chunks ?? [];
    expect(chunks.map((c) => c.seq)).toEqual([...Array(count).keys()]);
  });

  it.each([
    ['the master cuts it', () => master?.cut(grpc.status.UNAVAILABLE)],
    ['the master ends it cleanly', () => master?.cut(grpc.status.OK)],
  ])('resends a result left unanswered on a new stream when %s', async (_, breakStream) => {
    master = await startMaster();
    master.behaviour = { result: (_r, delivery) => (delivery === 1 ? DROP : ACCEPT) };
    const link = connectReporter(master.address);
    const lost = result();
    const ack = link.report(lost, inAMinute());
    await waitFor(() => master?.deliveries.length === 1, { what: 'the first delivery' });
    breakStream();

    expect(await ack).toEqual(answerFor(lost));
    expect(master.connections).toHaveLength(2);
    expect(master.connections[0]?.open).toBe(false);
    expect(master.deliveries.map((d) => d.result.taskId)).toEqual([lost.taskId, lost.taskId]);
  });

  it('resends a result whose report broke the call, on a new stream', async () => {
    master = await startMaster();
    master.behaviour = {
      result: (_r, delivery) => (delivery === 1 ? fail(grpc.status.INTERNAL) : ACCEPT),
    };
    const link = connectReporter(master.address);
    const r = result();
    expect(await link.report(r, inAMinute())).toEqual(answerFor(r));
    expect(master.connections).toHaveLength(2);
    expect(master.deliveries).toHaveLength(2);
  });

  it('resends a result answered store_unavailable until the master stores it', async () => {
    master = await startMaster();
    master.behaviour = {
      result: (_r, delivery) => (delivery <= 2 ? refuse('store_unavailable') : ACCEPT),
    };
    const link = connectReporter(master.address);
    const r = result();
    expect(await link.report(r, inAMinute())).toEqual(answerFor(r));
    expect(master.deliveries).toHaveLength(3);
    // The stream did not break: the resends went on the same one.
    expect(master.connections).toHaveLength(1);
  });

  it.each(['stale_lease', 'not_lease_owner', 'internal'])(
    'takes a result answered %s as final: no resend',
    async (reason) => {
      master = await startMaster();
      master.behaviour = { result: () => refuse(reason) };
      const link = connectReporter(master.address);
      const r = result();
      expect(await link.report(r, inAMinute())).toEqual(answerFor(r, reason));
      // One more report behind it on the same stream: had the first been resent, it would be here by now.
      const next = result();
      master.behaviour = {};
      expect(await link.report(next, inAMinute())).toEqual(answerFor(next));
      expect(master.deliveries.map((d) => d.result.taskId)).toEqual([r.taskId, next.taskId]);
    },
  );

  it('takes the bad_request answer to a malformed result as final, and the stream goes on', async () => {
    master = await startMaster();
    const link = connectReporter(master.address);
    const bad = result({ lease: '' });
    const ack = await link.report(bad, inAMinute());
    expect(ack).toMatchObject({ accepted: false, taskId: bad.taskId, attempt: 1, final: true });
    expect(ack?.reason).toMatch(/^bad_request: lease/);
    const good = result();
    expect(await link.report(good, inAMinute())).toEqual(answerFor(good));
    expect(master.connections).toHaveLength(1);
  });

  it('gives a result up when no answer came by the deadline plus the grace', async () => {
    master = await startMaster();
    master.behaviour = { result: () => DROP };
    const link = connectReporter(master.address);
    const started = Date.now();
    const ack = await link.report(result(), started - REPORT_GRACE_MS + 300);
    expect(ack).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2_000);
    // Unanswered on a stream that stays up: sent once, not again.
    expect(master.deliveries).toHaveLength(1);
    expect(master.connections).toHaveLength(1);
  });

  it('stops an attempt whose chunk the master refused: its later chunks and its result stay home', async () => {
    master = await startMaster();
    master.behaviour = {
      chunk: (c) => (c.taskId === 'refused-task' ? refuse('stale_lease') : ACCEPT),
    };
    const link = connectReporter(master.address);
    const ref = { taskId: 'refused-task', attempt: 1, lease: 'old', deadline: inAMinute() };
    const stream = link.openStream(ref);
    stream.write('a');
    // Answers come in order on one stream: once this one is in, so is the refusal before it.
    const marker = result();
    expect(await link.report(marker, inAMinute())).toEqual(answerFor(marker));
    expect(master.connections[0]?.acks[0]).toEqual({
      taskId: 'refused-task',
      attempt: 1,
      accepted: false,
      reason: 'stale_lease',
      final: false,
    });

    stream.write('b');
    const ack = await stream.finish(result({ taskId: ref.taskId, lease: ref.lease }));
    expect(ack).toEqual({
      taskId: 'refused-task',
      attempt: 1,
      accepted: false,
      reason: 'stale_lease',
      final: false,
    });
    const after = result();
    expect(await link.report(after, inAMinute())).toEqual(answerFor(after));
    const refused = master.attempts.find((a) => a.taskId === 'refused-task');
    expect(refused).toMatchObject({ chunks: [], droppedChunks: 0 });
    expect(refused?.final).toBeUndefined();
    expect(master.deliveries.map((d) => d.result.taskId)).toEqual([marker.taskId, after.taskId]);
  });
});
