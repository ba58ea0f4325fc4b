/**
 * The queue store: QUEUE_URL reachable (Redis PING, PostgreSQL SELECT), or,
 * embedded, the bundled PostgreSQL binaries present and runnable. A remote
 * store also tells its clock, which the clock check compares with ours.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { redactUrl } from '../../common/redact.ts';
import { storeKindForUrl } from '../../master/src/store/url.ts';
import type { ClockSample } from './clock.ts';
import { type CheckResult, fail, PROBE_TIMEOUT_MS, pass, reasonOf } from './result.ts';

export type StoreProbe =
  | { kind: 'redis' | 'postgres'; url: string; ok: true; clock: ClockSample }
  | { kind: 'embedded-postgres'; ok: true; version: string; blockedBy?: string }
  | { kind: 'redis' | 'postgres' | 'embedded-postgres'; url?: string; ok: false; reason: string };

/** Runs `ask` and returns the remote clock it read, stamped with our clock halfway through. */
async function sample(source: string, ask: () => Promise<number>): Promise<ClockSample> {
  const sent = Date.now();
  const remoteMs = await ask();
  const received = Date.now();
  return { source, remoteMs, localMs: (sent + received) / 2 };
}

async function probeRedis(url: string): Promise<ClockSample> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The socket's own error (ECONNREFUSED, …) says more than the rejected connect.
  let socketError: unknown;
  client.on('error', (err) => {
    socketError ??= err;
  });
  try {
    await client.connect().catch((err: unknown) => {
      throw socketError ?? err;
    });
    if ((await client.ping()) !== 'PONG') throw new Error('PING got no PONG');
    return await sample('Redis', async () => {
      const [seconds = '0', micros = '0'] = await client.time();
      return Number(seconds) * 1_000 + Number(micros) / 1_000;
    });
  } finally {
    client.disconnect();
  }
}

async function probePostgres(url: string): Promise<ClockSample> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await sample('PostgreSQL', async () => {
      const { rows } = await client.query<{ ms: number }>(
        'SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS ms',
      );
      return Number(rows[0]?.ms);
    });
  } finally {
    await client.end().catch(() => {});
  }
}

/** The platform package embedded-postgres loads its binaries from, resolved as it does. */
async function bundledPostgres(): Promise<string> {
  const require = createRequire(import.meta.url);
  const fromLibrary = createRequire(require.resolve('embedded-postgres'));
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const entry = fromLibrary.resolve(`@embedded-postgres/${platform}-${process.arch}`);
  const binaries = (await import(pathToFileURL(entry).href)) as Record<string, string>;
  for (const name of ['initdb', 'pg_ctl', 'postgres']) {
    const path = binaries[name];
    if (!path) throw new Error(`the package names no ${name}`);
    await access(path, constants.X_OK);
  }
  // Runs it: a binary whose shared libraries are missing fails here, not at start.
  const { stdout } = await promisify(execFile)(binaries.postgres ?? '', ['--version'], {
    timeout: PROBE_TIMEOUT_MS,
  });
  return stdout.trim().replace(/^postgres \(PostgreSQL\) /, '');
}

/**
 * As root, the embedded PostgreSQL runs as user `postgres`, which must be
 * able to enter every directory above the data dir (the master opens the
 * data dir itself): the first existing one it cannot enter, if any.
 */
async function blockingParent(dataDir: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  for (let dir = dirname(resolve(dataDir)); ; dir = dirname(dir)) {
    const mode = await stat(dir).then(
      (info) => info.mode,
      () => undefined,
    );
    // A directory not there yet is created enterable (0755) on start.
    if (mode !== undefined && (mode & 0o001) === 0) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

export async function probeStore(
  queueUrl: string | undefined,
  dataDir: string,
): Promise<StoreProbe> {
  const kind = storeKindForUrl(queueUrl);
  if (kind === 'embedded-postgres' || queueUrl === undefined) {
    try {
      const version = await bundledPostgres();
      return {
        kind: 'embedded-postgres',
        ok: true,
        version,
        blockedBy: await blockingParent(dataDir),
      };
    } catch (err) {
      return { kind: 'embedded-postgres', ok: false, reason: reasonOf(err) };
    }
  }
  const url = redactUrl(queueUrl);
  try {
    const clock = kind === 'redis' ? await probeRedis(queueUrl) : await probePostgres(queueUrl);
    return { kind, url, ok: true, clock };
  } catch (err) {
    return { kind, url, ok: false, reason: reasonOf(err) };
  }
}

export function storeVerdict(probe: StoreProbe): CheckResult {
  if (probe.kind === 'embedded-postgres') {
    if (probe.ok && probe.blockedBy) {
      return fail(
        'store',
        `embedded PostgreSQL ${probe.version} cannot reach the data dir`,
        `it runs as user "postgres" (flota runs as root), which cannot enter ${probe.blockedBy}`,
        `Choose a FLOTA_DATA_DIR outside it, or let others enter it (chmod o+x ${probe.blockedBy})`,
      );
    }
    if (probe.ok) return pass('store', `embedded PostgreSQL ${probe.version} bundled and runnable`);
    return fail(
      'store',
      'embedded PostgreSQL not usable',
      probe.reason,
      'Reinstall the dependencies (npm ci, with install scripts allowed), or set QUEUE_URL to a Redis or PostgreSQL',
    );
  }
  const name = probe.kind === 'redis' ? 'Redis' : 'PostgreSQL';
  if (probe.ok) return pass('store', `${name} at ${probe.url} answers`);
  return fail(
    'store',
    `${name} at ${probe.url} unreachable`,
    probe.reason,
    `Start it, or correct QUEUE_URL (unset it to use the embedded PostgreSQL)`,
  );
}
