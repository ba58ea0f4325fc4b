import { connect } from 'node:net';
import { type ManagedServer, startManagedServer } from './managed-server.ts';

export type RedisServer = ManagedServer;

/**
 * Resolves true when a Redis server on `port` answers PING with PONG (or, with
 * `anyAnswer`, with anything, e.g. NOAUTH from a server that wants a password).
 */
export function answersPing(port: number, anyAnswer = false): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n'))
        done(reply.startsWith('+PONG') || (anyAnswer && /^[+-]/.test(reply)));
    });
  });
}

/**
 * Spawns the `redis-server` binary on a free 127.0.0.1 port, without
 * persistence, and resolves once it answers PING. Call `stop()` in afterAll;
 * the child is also killed when the test process exits.
 *
 * `dir` becomes its working directory (`--dir`), where it would keep files:
 * a process scan can then tell it apart from other redis-servers.
 *
 * @example
 * const redis = await startRedis();
 * const store = await openQueueStore({ url: redis.url, dataDir, log });
 */
export function startRedis(options: { dir?: string } = {}): Promise<RedisServer> {
  return startManagedServer({
    what: 'redis-server',
    command: 'redis-server',
    prepare: async (port) => [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'yes',
      ...(options.dir ? ['--dir', options.dir] : []),
    ],
    ready: answersPing,
    url: (port) => `redis://127.0.0.1:${port}`,
  });
}
