/**
 * The queue store of the kit's master, chosen for a quick start: the Redis of
 * `--queue-url` when given; else a `redis-server` from PATH, started here on
 * a free port without persistence; else the embedded PostgreSQL (slower to
 * start, and needs nothing installed).
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { Logger } from 'pino';
import { freeLoopbackPort } from '../../common/free-port.ts';

export interface KitStore {
  /** QUEUE_URL for the master; undefined = the embedded PostgreSQL. */
  url: string | undefined;
  /** What the table's header says the store was. */
  describe: string;
  stop(): Promise<void>;
}

/** How long a local redis-server may take to answer PING. */
const REDIS_READY_MS = 5_000;

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** A throwaway redis-server, or undefined when none is installed or it did not answer. */
async function startLocalRedis(log: Logger): Promise<KitStore | undefined> {
  const port = await freeLoopbackPort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const failed = new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('exit', () => resolve(false));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  };
  const readyBy = Date.now() + REDIS_READY_MS;
  while (Date.now() < readyBy) {
    const ready = await Promise.race([answersPing(port), failed]);
    if (ready) return { url: `redis://127.0.0.1:${port}`, describe: 'redis-server (local)', stop };
    if (child.exitCode !== null || child.pid === undefined) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  log.debug({ port }, 'no local redis-server answered; using the embedded PostgreSQL');
  await stop();
  return undefined;
}

export async function openKitStore(queueUrl: string | undefined, log: Logger): Promise<KitStore> {
  if (queueUrl) return { url: queueUrl, describe: 'QUEUE_URL', stop: async () => {} };
  return (
    (await startLocalRedis(log)) ?? {
      url: undefined,
      describe: 'embedded PostgreSQL',
      stop: async () => {},
    }
  );
}
