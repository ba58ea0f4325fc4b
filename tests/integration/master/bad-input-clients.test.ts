/**
 * Bad input from the master's clients, against a real master and worker:
 * REST answers a JSON `{ error, code }` with the right status; Socket.IO
 * (what the chat UI talks to) answers every event with a wrong shape with
 * `{ ok: false, error }` in its ack, a 10 MB prompt too. The connection and
 * the master stay up.
 */
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { onTaskEvent } from '../../helpers/task-events.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import {
  type ErrorTrap,
  type LogTap,
  runTask,
  tapLogs,
  trapProcessErrors,
} from './bad-input-support.ts';
import { api, startTestMaster, startTestWorker } from './support.ts';

/** Events by any name, with any payload: what a broken or hostile client sends. */
type LooseSocket = Socket<Record<string, never>, Record<string, (...args: unknown[]) => void>>;
type Reply = { ok: boolean; error?: string } & Record<string, unknown>;

const TEN_MB = 10 * 1024 * 1024;
const ACK_TIMEOUT_MS = 15_000;

describe('bad input from REST and Socket.IO clients', () => {
  let trap: ErrorTrap;
  let redis: RedisServer;
  let master: MasterHandle;
  let worker: WorkerHandle;
  let socket: LooseSocket;
  let logs: LogTap;
  const disconnects: string[] = [];
  const completed: TaskView[] = [];

  /**
   * Emits and waits for the ack. Fails at once, naming the reason, if the
   * server drops the connection instead of answering.
   */
  function ask(event: string, ...args: unknown[]): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const onDisconnect = (reason: string) =>
        reject(new Error(`the server dropped the socket instead of answering ${event}: ${reason}`));
      socket.once('disconnect', onDisconnect);
      socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck(event, ...args)
        .then(
          (reply) => resolve(reply as Reply),
          (err: Error) => reject(new Error(`no ack for ${event}: ${err.message}`)),
        )
        .finally(() => socket.off('disconnect', onDisconnect));
    });
  }

  const expectRefused = (reply: Reply, reason: RegExp) => {
    expect(reply.ok).toBe(false);
    expect(reply.error).toEqual(expect.any(String));
    expect(reply.error).toMatch(reason);
  };

  beforeAll(async () => {
    trap = trapProcessErrors();
    redis = await startRedis();
    master = await startTestMaster({ queueUrl: redis.url });
    logs = await tapLogs(master.mqttUrl);
    worker = await startTestWorker(master, { WORKER_ID: 'sock-w1' });
    await waitFor(
      async () => (await api<{ models: string[] }>(master, '/api/workers')).body.models.length > 0,
      { what: 'worker online' },
    );
    socket = io(master.httpUrl, { transports: ['websocket'], reconnection: false }) as LooseSocket;
    socket.on('disconnect', (reason) => {
      disconnects.push(reason);
    });
    onTaskEvent(socket, 'task:completed', (view) => {
      completed.push(view);
    });
    await waitFor(() => socket.connected, { what: 'socket connected' });
  });

  afterAll(async () => {
    socket?.close();
    await worker?.close();
    await logs?.close();
    await master?.close();
    await redis?.stop();
    trap?.dispose();
  });

  describe('REST', () => {
    it('answers a 10 MB prompt with 413 and a JSON error', async () => {
      const { status, body } = await api(master, '/api/tasks', {
        body: { prompt: 'x'.repeat(TEN_MB) },
      });
      expect(status).toBe(413);
      expect(body).toEqual({ error: expect.stringMatching(/too large.*limit/), code: 'too_large' });
      await logs.waitForLine(
        (l) => l.msg === 'request refused' && (l as { status?: number }).status === 413,
        'the master logs the 413',
      );
    });

    it('answers malformed JSON with 400 and a JSON error', async () => {
      const { status, body } = await api(master, '/api/tasks', { body: '{"prompt": "x",' });
      expect(status).toBe(400);
      expect(body).toEqual({ error: 'request body is not valid JSON', code: 'bad_request' });
    });

    const shapes: Array<[string, unknown, RegExp]> = [
      ['no prompt', {}, /prompt/],
      ['a numeric prompt', { prompt: 42 }, /prompt/],
      ['an empty prompt', { prompt: '   ' }, /prompt must not be empty/],
      ['a prompt over the limit', { prompt: 'x'.repeat(200_000) }, /prompt/],
      ['a wrong priority', { prompt: 'x', priority: 'high' }, /priority/],
      ['an unknown field', { prompt: 'x', sudo: true }, /sudo/],
      ['an array', [1, 2], /expected object/i],
      ['a bare string', '"just a string"', /not valid JSON/],
      [
        'too many messages',
        { prompt: 'x', messages: Array(51).fill({ role: 'user', content: 'hi' }) },
        /messages/,
      ],
    ];
    for (const [what, payload, reason] of shapes) {
      it(`answers ${what} with 400 and the validation reason`, async () => {
        const { status, body } = await api<{ error: string; code: string }>(master, '/api/tasks', {
          body: payload,
        });
        expect(status).toBe(400);
        expect(body.code).toBe('bad_request');
        expect(body.error).toMatch(reason);
      });
    }

    it('answers a non-UTF-8 charset with 415 and a task id too long with 400', async () => {
      const charset = await api<{ error: string; code: string }>(master, '/api/tasks', {
        body: '{"prompt":"x"}',
        headers: { 'content-type': 'application/json; charset=latin1' },
      });
      expect(charset).toMatchObject({
        status: 415,
        body: { error: expect.stringMatching(/charset/) },
      });
      const id = await api<{ error: string; code: string }>(
        master,
        `/api/tasks/${'x'.repeat(300)}`,
      );
      expect(id).toMatchObject({ status: 400, body: { code: 'bad_request' } });
    });
  });

  describe('Socket.IO', () => {
    it('refuses task:submit before session:hello', async () => {
      expectRefused(await ask('task:submit', { prompt: 'hi' }), /hello/);
    });

    it('refuses session:hello with a bad session id or a wrong shape', async () => {
      expectRefused(await ask('session:hello', { sessionId: 'bad id!' }), /sessionId/);
      expectRefused(await ask('session:hello', { sessionId: 'x' }), /sessionId/);
      expectRefused(await ask('session:hello', 42), /./);
      expectRefused(await ask('session:hello', null), /./);
      expectRefused(
        await ask('session:hello', { sessionId: 'session-ok-1', admin: true }),
        /admin|unrecognized/i,
      );
      expect(await ask('session:hello', { sessionId: 'session-bad-input-1' })).toMatchObject({
        ok: true,
      });
    });

    const submits: Array<[string, unknown, RegExp]> = [
      ['no payload', undefined, /./],
      ['a string', 'hello', /./],
      ['an array', [1, 2, 3], /./],
      ['no prompt', { model: 'echo' }, /prompt/],
      ['a numeric prompt', { prompt: 7 }, /prompt/],
      ['an unknown field', { prompt: 'x', rm: '-rf' }, /rm/],
      ['a negative priority', { prompt: 'x', priority: -1 }, /priority/],
      ['a bad history', { prompt: 'x', messages: [{ role: 'root', content: 'x' }] }, /messages/],
      ['an over-long clientId', { prompt: 'x', clientId: 'c'.repeat(65) }, /clientId/],
    ];
    for (const [what, payload, reason] of submits) {
      it(`refuses task:submit with ${what}, in the ack`, async () => {
        expectRefused(await ask('task:submit', payload), reason);
      });
    }

    it('refuses a 10 MB prompt in the ack, without dropping the connection', async () => {
      expectRefused(await ask('task:submit', { prompt: 'x'.repeat(TEN_MB) }), /prompt/);
      expect(socket.connected).toBe(true);
    });

    it('refuses task:cancel with a wrong shape or an unknown task', async () => {
      expectRefused(await ask('task:cancel', {}), /taskId/);
      expectRefused(await ask('task:cancel', { taskId: 5 }), /taskId/);
      expectRefused(await ask('task:cancel', 'any.echo.x'), /./);
      expectRefused(await ask('task:cancel', { taskId: 'any.echo.unknown' }), /./);
    });

    it('answers an event it does not know with an ack error', async () => {
      expectRefused(await ask('task:explode', { now: true }), /unknown event|task:explode/);
    });

    it('shrugs off events without an ack and garbage acks', async () => {
      socket.emit('task:submit', { prompt: 'no ack wanted' });
      socket.emit('session:hello', { sessionId: 'bad id!' });
      socket.emit('session:ack', { seq: 'many' });
      socket.emit('session:ack', null);
      socket.emit('no-such-event');
      // A later request on the same socket is still answered: the others were handled or dropped.
      expect(await ask('session:hello', { sessionId: 'session-bad-input-1' })).toMatchObject({
        ok: true,
      });
    });
  });

  it('still runs a task over the same socket and over REST, with nothing uncaught', async () => {
    const reply = await ask('task:submit', { prompt: 'still fine', clientId: 'c-1' });
    expect(reply).toMatchObject({ ok: true, taskId: expect.any(String) });
    const view = await waitFor(() => completed.find((v) => v.id === reply.taskId), {
      what: 'task:completed on the socket',
    });
    expect(view).toMatchObject({ state: 'completed', result: 'echo: still fine' });
    expect((await runTask(master, 'rest too')).state).toBe('completed');
    expect((await api<{ ok: boolean }>(master, '/healthz')).body).toEqual({ ok: true });
    expect(disconnects).toEqual([]);
    expect(trap.errors).toEqual([]);
  });
});
