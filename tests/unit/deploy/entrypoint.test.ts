/**
 * deploy/docker/entrypoint.sh, the images' entrypoint: NAME_FILE becomes
 * NAME, conflicts and bad files stop the container with a clear message, and
 * a master without QUEUE_URL is refused (the images have no embedded
 * PostgreSQL). The command `python-worker` (flota-worker-python's) runs the
 * Python worker instead. `node` and `python3` are replaced by a stand-in that
 * reports what it got.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run } from './support/tools.ts';

const ENTRYPOINT = join(ROOT, 'deploy/docker/entrypoint.sh');

let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flota-entrypoint-'));
  const fakeNode = join(dir, 'node');
  const report = 'console.log(JSON.stringify({ argv: process.argv.slice(1), env: process.env }))';
  writeFileSync(fakeNode, `#!/bin/sh\nexec '${process.execPath}' -e '${report}' "$@"\n`);
  chmodSync(fakeNode, 0o755);
  const fakePython = join(dir, 'python3');
  // `--`: node would take -m for one of its own options.
  writeFileSync(fakePython, `#!/bin/sh\nexec '${process.execPath}' -e '${report}' -- "$@"\n`);
  chmodSync(fakePython, 0o755);
  for (const [name, text] of [
    ['password', 'pa:ss word\n'],
    ['url', 'redis://:pw@redis:6379\n\n'],
    ['empty', ''],
  ] as const) {
    writeFileSync(join(dir, name), text);
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Started {
  status: number | null;
  stderr: string;
  argv?: string[];
  env?: Record<string, string>;
}

function start(args: string[], env: Record<string, string>): Started {
  const result = run('/bin/sh', [ENTRYPOINT, ...args], {
    env: { PATH: `${dir}:/usr/bin:/bin`, ...env },
  });
  if (result.status !== 0) return { status: result.status, stderr: result.stderr };
  const { argv, env: seen } = JSON.parse(result.stdout) as Started;
  return { status: 0, stderr: result.stderr, argv, env: seen };
}

describe('image entrypoint', () => {
  it('runs flota with its arguments, reading each NAME_FILE into NAME', () => {
    const started = start(['master'], {
      QUEUE_URL_FILE: join(dir, 'url'),
      MQTT_PASSWORD_FILE: join(dir, 'password'),
      WORKER_TOKEN: 'literal-token',
      LOG_LEVEL: 'debug',
    });
    expect(started.stderr).toBe('');
    expect(started.argv).toEqual(['/app/dist/cli/flota.js', 'master']);
    expect(started.env).toMatchObject({
      QUEUE_URL: 'redis://:pw@redis:6379',
      MQTT_PASSWORD: 'pa:ss word',
      WORKER_TOKEN: 'literal-token',
      LOG_LEVEL: 'debug',
    });
    expect(started.env?.QUEUE_URL_FILE).toBeUndefined();
    expect(started.env?.MQTT_PASSWORD_FILE).toBeUndefined();
  });

  it('starts a worker without any store', () => {
    const started = start(['worker'], { WORKER_TOKEN_FILE: join(dir, 'password') });
    expect(started.argv).toEqual(['/app/dist/cli/flota.js', 'worker']);
    expect(started.env?.WORKER_TOKEN).toBe('pa:ss word');
  });

  it("starts a Swarm replica with its service's join token from a file", () => {
    const started = start(['worker'], { WORKER_JOIN_TOKEN_FILE: join(dir, 'password') });
    expect(started.env?.WORKER_JOIN_TOKEN).toBe('pa:ss word');
    expect(started.env?.WORKER_JOIN_TOKEN_FILE).toBeUndefined();
  });

  it('runs the Python worker for python-worker, reading the same secret files', () => {
    const started = start(['python-worker'], { WORKER_JOIN_TOKEN_FILE: join(dir, 'password') });
    expect(started.stderr).toBe('');
    expect(started.argv).toEqual(['-m', 'flota_worker']);
    expect(started.env?.WORKER_JOIN_TOKEN).toBe('pa:ss word');
    expect(started.env?.WORKER_JOIN_TOKEN_FILE).toBeUndefined();
  });

  it('leaves the files flota reads itself as paths', () => {
    const paths = {
      QUEUE_URL: 'redis://redis:6379',
      FLOTA_SECRET_FILE: join(dir, 'password'),
      API_TOKENS_FILE: join(dir, 'password'),
      TLS_CERT: join(dir, 'password'),
    };
    const started = start(['master'], paths);
    expect(started.env).toMatchObject(paths);
    expect(started.env?.FLOTA_SECRET).toBeUndefined();
  });

  it('starts the autoscaler with its token from a file, and no store', () => {
    const started = start(['autoscale'], { AUTOSCALE_API_TOKEN_FILE: join(dir, 'password') });
    expect(started.argv).toEqual(['/app/dist/cli/flota.js', 'autoscale']);
    expect(started.env?.AUTOSCALE_API_TOKEN).toBe('pa:ss word');
    expect(started.env?.AUTOSCALE_API_TOKEN_FILE).toBeUndefined();
  });

  it('refuses NAME and NAME_FILE together', () => {
    const started = start(['worker'], { MQTT_PASSWORD: 'x', MQTT_PASSWORD_FILE: join(dir, 'url') });
    expect(started.status).toBe(64);
    expect(started.stderr).toMatch(/both MQTT_PASSWORD and MQTT_PASSWORD_FILE are set/);
  });

  it('refuses a missing or empty secret file, naming the variable', () => {
    const missing = start(['worker'], { WORKER_TOKEN_FILE: join(dir, 'nope') });
    expect(missing.status).toBe(64);
    expect(missing.stderr).toMatch(/WORKER_TOKEN_FILE=.*nope is not a readable file/);
    const empty = start(['worker'], { OPENAI_API_KEY_FILE: join(dir, 'empty') });
    expect(empty.status).toBe(64);
    expect(empty.stderr).toMatch(/OPENAI_API_KEY_FILE=.*empty is empty/);
  });

  it('refuses a master without QUEUE_URL: the images carry no embedded PostgreSQL', () => {
    const started = start(['master'], {});
    expect(started.status).toBe(64);
    expect(started.stderr).toMatch(/set QUEUE_URL \(or QUEUE_URL_FILE\)/);
  });
});
