/**
 * The operator scripts: shellcheck-clean, strict mode, a --help that works
 * without Docker, clear refusals of bad arguments, and deploy/make-secrets.sh
 * producing consistent, stable secrets (the autoscaler's token among the
 * master's).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run, runOk } from './support/tools.ts';

const TOP_LEVEL = ['build.sh', 'deploy.sh', 'scale.sh', 'verify.sh', 'logs.sh', 'stop.sh'];
const BASH_HELPERS = ['deploy/lib.sh', 'deploy/make-secrets.sh'];
/** POSIX sh: they run inside the images (Debian dash, Alpine busybox). */
const SH_SCRIPTS = ['deploy/docker/entrypoint.sh', 'deploy/mosquitto/entrypoint.sh'];

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flota-deploy-scripts-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deployment scripts', () => {
  it('are shellcheck-clean', () => {
    const result = run('shellcheck', ['-x', ...TOP_LEVEL, ...BASH_HELPERS, ...SH_SCRIPTS]);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 30_000);

  it('run in strict mode and are executable', () => {
    for (const file of [...TOP_LEVEL, 'deploy/make-secrets.sh']) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(text.startsWith('#!/usr/bin/env bash\n'), file).toBe(true);
      expect(text, file).toMatch(/^set -euo pipefail$/m);
      expect(statSync(join(ROOT, file)).mode & 0o111, file).not.toBe(0);
    }
    for (const file of SH_SCRIPTS) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(text.startsWith('#!/bin/sh\n'), file).toBe(true);
      expect(text, file).toMatch(/^set -eu$/m);
    }
  });

  it('answer --help with their usage, without Docker', () => {
    for (const file of [...TOP_LEVEL, 'deploy/make-secrets.sh']) {
      const result = run(join(ROOT, file), ['--help']);
      expect(result.status, file).toBe(0);
      expect(result.stdout, file).toMatch(/^Usage: /);
      expect(result.stderr, file).toBe('');
    }
  });

  it('refuse unknown arguments with a message and a non-zero status', () => {
    for (const file of [...TOP_LEVEL, 'deploy/make-secrets.sh']) {
      const result = run(join(ROOT, file), ['--no-such-option']);
      expect(result.status, file).not.toBe(0);
      expect(result.stderr, file).toMatch(/unknown (argument|option) '--no-such-option'/);
    }
  });

  it('check their arguments before they need a swarm', () => {
    const scale = (...args: string[]) => run(join(ROOT, 'scale.sh'), args);
    expect(scale('worker-x', '2').stderr).toMatch(/worker-cpu, worker-gpu or autoscaler/);
    expect(scale('autoscaler', '2').stderr).toMatch(/runs once \(1\) or not at all \(0\)/);
    expect(scale('worker-cpu', 'two').stderr).toMatch(/whole number/);
    expect(scale('worker-cpu', '65').stderr).toMatch(/over MQTT_WORKER_MAX \(64\)/);
    expect(run(join(ROOT, 'deploy.sh'), []).stderr).toMatch(/set REGISTRY/);
    expect(run(join(ROOT, 'build.sh'), []).stderr).toMatch(/set REGISTRY/);
    const badStack = run(join(ROOT, 'stop.sh'), [], { env: { STACK: 'Bad Name' } });
    expect(badStack.stderr).toMatch(/STACK must be/);
    const badTag = run(join(ROOT, 'build.sh'), ['--print-tag'], { env: { TAG: 'a tag' } });
    expect(badTag.stderr).toMatch(/not a valid image tag/);
  });

  it('tag images <version>-<git sha>', () => {
    const version = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const sha = runOk('git', ['rev-parse', '--short=12', 'HEAD']).trim();
    const tag = runOk(join(ROOT, 'build.sh'), ['--print-tag']).trim();
    expect(tag).toMatch(new RegExp(`^${version.replaceAll('.', '\\.')}-${sha}(-dirty)?$`));
  });

  it('make-secrets writes every secret once, private, with Redis ACL and URL in step', () => {
    const secrets = join(dir, 'secrets');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    const read = (name: string) => readFileSync(join(secrets, name), 'utf8').trim();
    expect(statSync(secrets).mode & 0o777).toBe(0o700);
    const password = read('redis_password');
    expect(password).toMatch(/^[0-9a-f]{64}$/);
    const sha = createHash('sha256').update(password).digest('hex');
    expect(read('redis_acl')).toBe(`user default on #${sha} ~* &* +@all`);
    expect(read('queue_url')).toBe(`redis://:${password}@redis:6379`);
    const autoscaler = read('autoscaler_api_token');
    expect(autoscaler).toMatch(/^[0-9a-f]{64}$/);
    expect(read('api_tokens')).toMatch(
      new RegExp(`^default:[0-9a-f]{64}\nautoscaler:${autoscaler}$`),
    );
    const names = [
      'mqtt_master_password',
      'mqtt_worker_password',
      'worker_token',
      'api_tokens',
      'autoscaler_api_token',
    ];
    const before = names.map(read);
    expect(new Set(before).size).toBe(names.length);

    const again = run(join(ROOT, 'deploy/make-secrets.sh'), [], {
      env: { SECRETS_DIR: secrets },
    });
    expect(again.status).toBe(0);
    expect(again.stderr).toBe('');
    expect(names.map(read)).toEqual(before);
  });

  it("make-secrets adds the autoscaler's token to an api_tokens from before it, once", () => {
    const secrets = join(dir, 'old-secrets');
    mkdirSync(secrets, { mode: 0o700 });
    // Written by an older make-secrets: one tenant, no final newline.
    writeFileSync(join(secrets, 'api_tokens'), `default:${'a'.repeat(64)}`);
    const first = run(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/added the autoscaler's token to .*api_tokens/);
    const token = readFileSync(join(secrets, 'autoscaler_api_token'), 'utf8').trim();
    const expected = `default:${'a'.repeat(64)}\nautoscaler:${token}\n`;
    expect(readFileSync(join(secrets, 'api_tokens'), 'utf8')).toBe(expected);
    const again = run(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    expect(again.stderr).toBe('');
    expect(readFileSync(join(secrets, 'api_tokens'), 'utf8')).toBe(expected);
  });
});
