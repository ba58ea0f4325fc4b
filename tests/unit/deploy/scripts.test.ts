/**
 * The operator scripts: shellcheck-clean, strict mode, a --help that works
 * without Docker, clear refusals of bad arguments, and deploy/make-secrets.sh
 * producing consistent, stable secrets (the autoscaler's admin token among
 * the master's, join tokens the master's secret signed, a CA and a master
 * certificate for the names it is reached by).
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
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
    expect(scale('worker-x', '2').stderr).toMatch(
      /worker-cpu, worker-gpu, worker-python or autoscaler/,
    );
    expect(scale('autoscaler', '2').stderr).toMatch(/runs once \(1\) or not at all \(0\)/);
    expect(scale('worker-cpu', 'two').stderr).toMatch(/whole number/);
    // No upper bound of its own: the master provisions each new worker's login.
    expect(scale('worker-cpu', '65').stderr).toMatch(/cannot reach the Docker engine/);
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
      new RegExp(`^default:[0-9a-f]{64}:admin\nautoscaler:${autoscaler}:admin$`),
    );
    expect(read('flota_secret')).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(secrets, 'tls_ca_key')).mode & 0o077).toBe(0);
    const names = [
      'flota_secret',
      'worker_join_cpu',
      'worker_join_gpu',
      'worker_join_python',
      'mqtt_master_password',
      'mqtt_observer_password',
      'api_tokens',
      'autoscaler_api_token',
      'tls_ca',
      'tls_cert',
      'tls_key',
      'tls_ca_key',
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

  it("make-secrets signs the workers' join tokens with flota_secret, for their prefix only", async () => {
    const secrets = join(dir, 'join-secrets');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    const read = (name: string) => readFileSync(join(secrets, name), 'utf8').trim();
    const check = async () => {
      const dataDir = mkdtempSync(join(dir, 'master-'));
      const credentials = await WorkerCredentials.open({ dataDir, secret: read('flota_secret') });
      return (name: string) => credentials.checkJoin(read(name));
    };
    let signed = await check();
    expect(signed('worker_join_cpu')).toEqual({ ok: true, prefix: 'cpu-' });
    expect(signed('worker_join_gpu')).toEqual({ ok: true, prefix: 'gpu-' });
    expect(signed('worker_join_python')).toEqual({ ok: true, prefix: 'py-' });

    // A new flota_secret: the old tokens would be refused, so they are made again.
    const before = read('worker_join_cpu');
    unlinkSync(join(secrets, 'flota_secret'));
    const again = run(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    expect(again.stderr).toMatch(/worker_join_cpu was not signed with the current flota_secret/);
    expect(read('worker_join_cpu')).not.toBe(before);
    signed = await check();
    expect(signed('worker_join_cpu')).toEqual({ ok: true, prefix: 'cpu-' });
    expect(signed('worker_join_gpu')).toEqual({ ok: true, prefix: 'gpu-' });
    expect(signed('worker_join_python')).toEqual({ ok: true, prefix: 'py-' });
  });

  it('make-secrets makes a CA and a master certificate for the names it is reached by', () => {
    const secrets = join(dir, 'tls-secrets');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], {
      env: { SECRETS_DIR: secrets, TLS_HOSTNAMES: 'flota.example.com, 10.0.0.5' },
    });
    const read = (name: string) => readFileSync(join(secrets, name), 'utf8');
    const ca = new X509Certificate(read('tls_ca'));
    const cert = new X509Certificate(read('tls_cert'));
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(read('tls_key')))).toBe(true);
    for (const host of ['master', 'localhost', 'flota.example.com']) {
      expect(cert.checkHost(host), host).toBe(host);
    }
    for (const ip of ['127.0.0.1', '10.0.0.5']) expect(cert.checkIP(ip), ip).toBe(ip);
    expect(cert.checkHost('elsewhere.example.com')).toBeUndefined();

    const bad = run(join(ROOT, 'deploy/make-secrets.sh'), [], {
      env: { SECRETS_DIR: join(dir, 'tls-bad'), TLS_HOSTNAMES: 'not a name' },
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/TLS_HOSTNAMES: 'not a name' is not a host name or IP address/);
  });

  it('make-secrets keeps a certificate of your own, but needs the CA that signed it', () => {
    const secrets = join(dir, 'own-cert');
    mkdirSync(secrets, { mode: 0o700 });
    writeFileSync(join(secrets, 'tls_cert'), '-----BEGIN CERTIFICATE-----\nmine\n');
    writeFileSync(join(secrets, 'tls_key'), '-----BEGIN PRIVATE KEY-----\nmine\n');
    const refused = run(join(ROOT, 'deploy/make-secrets.sh'), [], {
      env: { SECRETS_DIR: secrets },
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/tls_cert is there without tls_ca: add the CA certificate/);
    writeFileSync(join(secrets, 'tls_ca'), '-----BEGIN CERTIFICATE-----\ntheirs\n');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    expect(readFileSync(join(secrets, 'tls_cert'), 'utf8')).toContain('mine');
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
    const expected = `default:${'a'.repeat(64)}\nautoscaler:${token}:admin\n`;
    expect(readFileSync(join(secrets, 'api_tokens'), 'utf8')).toBe(expected);
    const again = run(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    expect(again.stderr).toBe('');
    expect(readFileSync(join(secrets, 'api_tokens'), 'utf8')).toBe(expected);
  });
});
