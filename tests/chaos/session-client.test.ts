/**
 * The simulated browser session against a scripted Socket.IO server (real
 * Socket.IO on loopback): submissions are resent with the same clientId until
 * accepted, replays are filtered by outboxSeq, a new epoch resets the count
 * (even when its events arrive before the hello ack), and hello carries the
 * resume position and the unfinished tasks.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.ts';
import { SessionClient } from './support/session-client.ts';
import { type Submission, TaskLedger } from './support/task-ledger.ts';

const CHUNK = 4;
const httpServer = createServer();
const io = new Server(httpServer);
const hellos: unknown[] = [];
const submits: Array<{ clientId?: string; prompt?: string }> = [];
const acks: number[] = [];
let current: Socket | undefined;
let client: SessionClient | undefined;
/** Sends one task event the way the master does: in a `task:events` batch. */
const sendEvent = (socket: Socket, name: string, payload: object) =>
  socket.emit('task:events', { events: [{ name, payload }] });

const view = (id: string, result: string, outboxSeq: number) => ({
  id,
  state: 'completed',
  model: 'echo',
  priority: 0,
  requires: {},
  attempt: 1,
  result,
  timings: { submittedAt: 1 },
  outboxSeq,
});

beforeAll(async () => {
  io.on('connection', (socket) => {
    current = socket;
    socket.on('session:hello', (payload: unknown, ack: (reply: unknown) => void) => {
      hellos.push(payload);
      const reply = { ok: true, sessionId: 'sess-test-1', workers: [], models: [] };
      if (hellos.length === 1) return ack({ ...reply, epoch: 'e1', resumed: 'fresh' });
      // A restarted master: new epoch, and the pending task's outcome sent before the ack.
      sendEvent(socket, 'task:completed', view('t2', 'echo: second', 1));
      ack({ ...reply, epoch: 'e2', resumed: 'resync' });
    });
    socket.on('task:submit', (payload: { clientId?: string; prompt?: string }, ack) => {
      submits.push(payload);
      if (submits.length === 1) return ack({ ok: false, error: 'queue store unavailable' });
      ack({ ok: true, taskId: payload.clientId === 'c1' ? 't1' : 't2' });
    });
    socket.on('session:ack', (payload: { seq: number }) => acks.push(payload.seq));
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => io.close(() => resolve()));
});

describe('SessionClient', () => {
  it('speaks the outbox protocol: resend, filter, ack, resume, new epoch', async () => {
    const { port } = httpServer.address() as AddressInfo;
    const ledger = new TaskLedger(CHUNK);
    const session = new SessionClient(`http://127.0.0.1:${port}`, 'sess-test-1', ledger);
    client = session;
    await waitFor(() => session.isReady(), { what: 'the first hello' });
    expect(hellos[0]).toEqual({ sessionId: 'sess-test-1', pending: [] });

    // Refused once (store down), then accepted: same clientId and prompt both times.
    const first = ledger.add('c1', 'first');
    await session.submit(first, Date.now() + 10_000);
    expect(first).toMatchObject({ taskId: 't1', sends: 2 });
    expect(submits).toEqual([
      { prompt: 'first', clientId: 'c1', model: 'echo' },
      { prompt: 'first', clientId: 'c1', model: 'echo' },
    ]);

    // Live events, then a replay of the last two: processed once, acked up to 3.
    const socket = current as Socket;
    sendEvent(socket, 'task:queued', { taskId: 't1', clientId: 'c1', outboxSeq: 1 });
    sendEvent(socket, 'task:chunk', {
      taskId: 't1',
      attempt: 1,
      seq: 0,
      text: 'echo',
      outboxSeq: 2,
    });
    sendEvent(socket, 'task:completed', view('t1', 'echo: first', 3));
    sendEvent(socket, 'task:chunk', {
      taskId: 't1',
      attempt: 1,
      seq: 0,
      text: 'echo',
      outboxSeq: 2,
    });
    sendEvent(socket, 'task:completed', view('t1', 'echo: first', 3));
    await waitFor(() => acks.includes(3), { what: 'session:ack up to 3' });
    expect(session.stats.replayedFiltered).toBe(2);

    const second: Submission = ledger.add('c2', 'second');
    await session.submit(second, Date.now() + 10_000);
    sendEvent(socket, 'task:queued', { taskId: 't2', clientId: 'c2', outboxSeq: 4 });
    await waitFor(() => acks.includes(4), { what: 'session:ack up to 4' });

    // The network drops: the client says where it was and what it still waits for.
    session.blip();
    await waitFor(() => hellos.length === 2 && session.isReady(), { what: 'the second hello' });
    expect(hellos[1]).toEqual({
      sessionId: 'sess-test-1',
      resume: { epoch: 'e1', lastSeq: 4 },
      pending: ['t2'],
    });
    await waitFor(() => ledger.settled(), { what: 't2 to end' });
    const verdict = ledger.verdict();
    expect(verdict).toMatchObject({ acked: 2, completed: 2, duplicates: 0, lost: [] });
    expect(verdict.mismatchedAnswers).toEqual([]);
    expect(session.stats).toMatchObject({
      epochChanges: 1,
      resumed: { fresh: 1, replay: 0, resync: 1 },
      unstamped: 0,
      submitRefusals: { 'queue store unavailable': 1 },
    });
  });
});
