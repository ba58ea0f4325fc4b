/**
 * A master started together with its Redis (a Swarm or Compose deploy starts
 * every service at once) waits for it, saying so, instead of exiting; and it
 * still gives up after its bound, with a message that names the store.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StartupError } from '../../../common/errors.ts';
import { openQueueStore } from '../../../master/src/store/index.ts';
import { freePort } from '../../helpers/free-port.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

function capturingLog() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('openQueueStore at start', () => {
  it('waits for a Redis that comes up later, and says that it waits', async () => {
    const port = await freePort();
    const { log, lines } = capturingLog();
    const opening = openQueueStore({
      url: `redis://127.0.0.1:${port}`,
      dataDir: '/nonexistent',
      log,
      connectTimeoutMs: 20_000,
    });
    // Redis starts a second and a half after the master began to wait.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    children.push(redis);
    const store = await opening;
    await store.close();
    const messages = lines.map((line) => line.msg);
    expect(messages.some((msg) => msg.startsWith('waiting for the queue store to answer'))).toBe(
      true,
    );
    expect(messages).toContain('queue store answered');
  }, 30_000);

  it('gives up after its bound with a StartupError that names the store', async () => {
    const port = await freePort();
    const { log } = capturingLog();
    const started = Date.now();
    const error = await openQueueStore({
      url: `redis://127.0.0.1:${port}`,
      dataDir: '/nonexistent',
      log,
      connectTimeoutMs: 800,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).message).toContain(
      `127.0.0.1:${port} did not answer within 800 ms`,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 20_000);
});
