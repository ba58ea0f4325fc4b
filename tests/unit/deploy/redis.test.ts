/**
 * Redis in stack.yml and docker-compose.yml, and the backup docs/DEPLOY.md
 * describes: the health check (run with a stand-in redis-cli) passes while
 * Redis loads its AOF, the memory limit leaves room for an AOF rewrite's
 * fork, and the backup is the AOF directory of the volume the stack uses.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ComposeService,
  composeConfig,
  ROOT,
  run,
  secretSources,
  stackConfig,
} from './support/tools.ts';

/** Prints $FAKE_REPLY to `ping` when REDISCLI_AUTH is the password, NOAUTH otherwise. */
const FAKE_REDIS_CLI = `#!/bin/sh
[ "$*" = ping ] || { echo "fake redis-cli: unexpected $*" >&2; exit 2; }
if [ "\${REDISCLI_AUTH:-}" != "$FAKE_PASSWORD" ]; then echo 'NOAUTH Authentication required.'; exit 0; fi
[ -n "$FAKE_REPLY" ] || { echo 'Could not connect to Redis at 127.0.0.1:6379: Connection refused' >&2; exit 1; }
echo "$FAKE_REPLY"
`;

let dir = '';
let stackRedis: ComposeService;
let composeRedis: ComposeService;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flota-deploy-redis-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'redis-cli'), FAKE_REDIS_CLI);
  chmodSync(join(dir, 'bin', 'redis-cli'), 0o755);
  writeFileSync(join(dir, 'redis_password'), 's3cret\n');
  stackRedis = stackConfig().services.redis!;
  composeRedis = composeConfig().config.services.redis!;
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Exit status of the service's CMD-SHELL health check when Redis answers `reply`. */
function healthCheck(service: ComposeService, reply: string, password = 's3cret'): number | null {
  const test = service.healthcheck?.test as string[];
  expect(test[0]).toBe('CMD-SHELL');
  // docker-compose prints Compose's $$ escape as it is; the container's shell sees one $.
  const command = (test[1] ?? '')
    .replaceAll('$$', '$')
    .replaceAll('/run/secrets/redis_password', join(dir, 'redis_password'));
  return run('/bin/sh', ['-c', command], {
    env: {
      PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
      FAKE_REPLY: reply,
      FAKE_PASSWORD: password,
    },
  }).status;
}

/** Bytes of a memory size: plain bytes (as docker stack config prints them), "1G", "768mb". */
function bytes(size: string | number): number {
  const match = /^(\d+)\s*(?:([kmg])b?)?$/i.exec(String(size));
  if (!match) throw new Error(`not a size: ${size}`);
  const unit = (match[2] ?? '').toLowerCase();
  const power = unit === 'k' ? 1 : unit === 'm' ? 2 : unit === 'g' ? 3 : 0;
  return Number(match[1]) * 1024 ** power;
}

describe('Redis', () => {
  it('counts as healthy while it loads its AOF, with the password from the secret', () => {
    for (const [file, redis] of [
      ['stack.yml', stackRedis],
      ['docker-compose.yml', composeRedis],
    ] as const) {
      expect(healthCheck(redis, 'PONG'), file).toBe(0);
      expect(healthCheck(redis, 'LOADING Redis is loading the dataset in memory'), file).toBe(0);
      expect(healthCheck(redis, ''), file).not.toBe(0);
      expect(healthCheck(redis, 'PONG', 'another password'), file).not.toBe(0);
      expect(secretSources(redis), file).toContain('redis_password');
    }
    // Failures during a long start count only after start_period.
    expect(
      Number.parseInt(String(stackRedis.healthcheck?.start_period), 10),
    ).toBeGreaterThanOrEqual(30);
  });

  it('has a memory limit with room for an AOF rewrite fork above --maxmemory', () => {
    const command = stackRedis.command ?? [];
    const maxmemory = command[command.indexOf('--maxmemory') + 1] ?? '';
    const limit = (stackRedis.deploy as { resources: { limits: { memory: string | number } } })
      .resources.limits.memory;
    expect(bytes(limit)).toBeGreaterThanOrEqual(2 * bytes(maxmemory));
    expect(composeRedis.command).toEqual(command);
  });

  it('is backed up and restored as the AOF directory of its volume (docs/DEPLOY.md)', () => {
    const docs = readFileSync(join(ROOT, 'docs/DEPLOY.md'), 'utf8');
    const section = /### 9\. Back up Redis\n([\s\S]*?)\n### /.exec(docs)?.[1] ?? '';
    const volume = (stackRedis.volumes as Array<{ source: string; target: string }>)[0]!;
    expect(volume.target).toBe('/data');
    expect(stackRedis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    // The stack "flota" prefixes its volumes and services.
    expect(section).toContain(`flota_${volume.source}:/data`);
    expect(section).toContain('REDISCLI_AUTH="$(cat /run/secrets/redis_password)"');
    expect(section).toMatch(/rcli BGREWRITEAOF\n/);
    expect(section).toMatch(/aof_rewrite_\(in_progress\|scheduled\):1/);
    expect(section).toMatch(
      /mkdir -p backup &&\n\s*docker cp "\$R:\/data\/appendonlydir" "backup\//,
    );
    expect(section).toMatch(
      /docker service scale flota_redis=0[\s\S]*cp -r \/backup \/data\/appendonlydir[\s\S]*docker service scale flota_redis=1/,
    );
    // A dump.rdb is never what Redis loads with AOF on.
    expect(section).not.toMatch(/cp [^\n]*\.rdb/);
  });
});
