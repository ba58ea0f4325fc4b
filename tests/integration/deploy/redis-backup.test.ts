/**
 * The Redis backup and restore of docs/DEPLOY.md, with a real redis-server
 * started with stack.yml's command line (AOF on) and its password: redis-cli
 * authenticated the way the docs' `rcli` does, BGREWRITEAOF, a wait on
 * INFO persistence, a copy of appendonlydir. What the copy restores, and why
 * a dump.rdb restores nothing.
 */
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagedServer } from '../../helpers/managed-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { ROOT, run, runOk, stackConfig } from '../../unit/deploy/support/tools.ts';
import { startStackRedis } from './support.ts';

let dir = '';
let secrets = '';
const started: ManagedServer[] = [];

async function startRedis(data: string): Promise<ManagedServer> {
  const redis = await startStackRedis(secrets, data);
  started.push(redis);
  return redis;
}

/** The docs' rcli: redis-cli with REDISCLI_AUTH read from the password secret. */
function rcli(redis: ManagedServer, ...command: string[]): string {
  const script = `REDISCLI_AUTH="$(cat '${join(secrets, 'redis_password')}')" exec redis-cli "$@"`;
  return runOk('/bin/sh', ['-c', script, 'rcli', '-p', String(redis.port), ...command]);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flota-redis-backup-'));
  secrets = join(dir, 'secrets');
  runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
  const command = stackConfig().services.redis?.command ?? [];
  expect(command.slice(0, 3)).toEqual(['redis-server', '--appendonly', 'yes']);
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis backup (docs/DEPLOY.md)', () => {
  it('copies appendonlydir after a rewrite, and that copy restores every key', async () => {
    const live = join(dir, 'live');
    mkdirSync(live);
    const redis = await startRedis(live);
    for (let i = 0; i < 200; i++) rcli(redis, 'RPUSH', 'bull:tasks:wait', `job-${i}`);
    rcli(redis, 'SET', 'before-rewrite', '1');
    rcli(redis, 'SAVE'); // a dump.rdb beside the AOF, as Redis's save points write one

    expect(rcli(redis, 'BGREWRITEAOF')).toMatch(/rewriting (started|scheduled)/);
    await waitFor(
      () => !/^aof_rewrite_(in_progress|scheduled):1/m.test(rcli(redis, 'INFO', 'persistence')),
      {
        what: 'the AOF rewrite to finish',
      },
    );
    expect(rcli(redis, 'INFO', 'persistence')).toMatch(/^aof_last_bgrewrite_status:ok/m);
    // Written after the rewrite: in the incremental file the copy takes along.
    rcli(redis, 'SET', 'after-rewrite', '2');
    const backup = join(dir, 'backup', 'redis-aof');
    cpSync(join(live, 'appendonlydir'), backup, { recursive: true });
    await redis.stop();

    // The restore: the directory back into an empty volume.
    const restored = join(dir, 'restored');
    cpSync(backup, join(restored, 'appendonlydir'), { recursive: true });
    const again = await startRedis(restored);
    expect(rcli(again, 'LLEN', 'bull:tasks:wait').trim()).toBe('200');
    expect(rcli(again, 'MGET', 'before-rewrite', 'after-rewrite').trim().split('\n')).toEqual([
      '1',
      '2',
    ]);
    await again.stop();

    // A copy cut off in the middle of a command loses that command only.
    const cut = join(dir, 'cut');
    cpSync(backup, join(cut, 'appendonlydir'), { recursive: true });
    const manifest = readFileSync(join(cut, 'appendonlydir', 'appendonly.aof.manifest'), 'utf8');
    const incr = /^file (\S+) seq \d+ type i$/m.exec(manifest)?.[1];
    expect(incr).toBeDefined();
    appendFileSync(join(cut, 'appendonlydir', incr!), '*3\r\n$3\r\nSET\r\n$4\r\nhalf');
    const truncated = await startRedis(cut);
    const values = rcli(truncated, 'MGET', 'before-rewrite', 'after-rewrite', 'half');
    // redis-cli prints a missing key as an empty line.
    expect(values.split('\n').slice(0, 3)).toEqual(['1', '2', '']);
    await truncated.stop();

    // Why not dump.rdb: with AOF on and no appendonlydir, Redis starts empty.
    const rdbOnly = join(dir, 'rdb-only');
    mkdirSync(rdbOnly);
    cpSync(join(live, 'dump.rdb'), join(rdbOnly, 'dump.rdb'));
    const empty = await startRedis(rdbOnly);
    expect(rcli(empty, 'DBSIZE').trim()).toBe('0');
    await empty.stop();
  });

  it('refuses redis-cli without the password, so rcli really authenticates', async () => {
    const data = join(dir, 'auth');
    mkdirSync(data);
    const redis = await startRedis(data);
    const bare = run('redis-cli', ['-p', String(redis.port), 'DBSIZE']);
    expect(bare.stdout + bare.stderr).toMatch(/NOAUTH/);
    expect(rcli(redis, 'DBSIZE').trim()).toBe('0');
    await redis.stop();
  });
});
