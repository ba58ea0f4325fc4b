/**
 * deploy.sh's decisions, with a stand-in `docker` on PATH that keeps its
 * swarm (secrets with their labels, service replica counts) in a directory
 * and records what `docker stack deploy` was run with: --autoscale turns the
 * autoscaler on and keeps the worker counts it chose, and an api_tokens
 * secret from before the autoscaler is refused with what to do.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, run } from './support/tools.ts';

const FAKE_DOCKER = `#!/bin/sh
# A swarm in $FAKE_SWARM: secrets/<name> holds a secret's labels, services/<name> its replicas.
set -eu
for last in "$@"; do :; done
case "$1 $2" in
  "info --format") echo true ;;
  "node ls") echo node-1 ;;
  "node update") ;;
  "secret inspect")
    [ -f "$FAKE_SWARM/secrets/$last" ] || exit 1
    case "$*" in
      *flota.autoscaler-token*) sed -n 's/^flota.autoscaler-token=//p' "$FAKE_SWARM/secrets/$last" ;;
    esac ;;
  "secret create")
    shift 2
    labels=""
    while [ "$1" = --label ]; do labels="$labels$2
"; shift 2; done
    printf '%s' "$labels" >"$FAKE_SWARM/secrets/$1" ;;
  "service inspect")
    [ -f "$FAKE_SWARM/services/$last" ] || exit 1
    cat "$FAKE_SWARM/services/$last" ;;
  "stack deploy")
    env | grep -E '^(AUTOSCALER_REPLICAS|CPU_WORKERS|GPU_WORKERS|STACK)=' | sort >"$FAKE_SWARM/deployed" ;;
  *) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
`;

let dir = '';
let swarm = '';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flota-deploy-sh-'));
  swarm = join(dir, 'swarm');
  mkdirSync(join(swarm, 'secrets'), { recursive: true });
  mkdirSync(join(swarm, 'services'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'docker'), FAKE_DOCKER);
  chmodSync(join(dir, 'bin', 'docker'), 0o755);
});

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function deploy(args: string[], env: Record<string, string> = {}) {
  const result = run(join(ROOT, 'deploy.sh'), args, {
    env: {
      PATH: `${join(dir, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      FAKE_SWARM: swarm,
      SECRETS_DIR: join(dir, 'secrets'),
      REGISTRY: 'reg.example:5000',
      TAG: '1.0.0',
      ...env,
    },
  });
  const file = join(swarm, 'deployed');
  const deployed = existsSync(file)
    ? Object.fromEntries(
        readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .map((line) => line.split('=')),
      )
    : undefined;
  return { ...result, deployed };
}

const labels = (secret: string) => readFileSync(join(swarm, 'secrets', secret), 'utf8');

describe('deploy.sh', () => {
  it('deploys the autoscaler only with --autoscale', () => {
    const off = deploy([]);
    expect(off.stderr).not.toMatch(/with the autoscaler/);
    expect(off.deployed).toEqual({ AUTOSCALER_REPLICAS: '0', STACK: 'flota' });

    const on = deploy(['--autoscale']);
    expect(on.status).toBe(0);
    expect(on.deployed).toEqual({ AUTOSCALER_REPLICAS: '1', STACK: 'flota' });
    expect(on.stderr).toMatch(/with the autoscaler \(pools worker-cpu:cpu:2-8\)/);
  });

  it("creates the autoscaler's token and marks the token list that holds it", () => {
    expect(deploy(['--autoscale']).status).toBe(0);
    expect(labels('flota_autoscaler_api_token')).toBe('flota.stack=flota\n');
    expect(labels('flota_api_tokens')).toBe('flota.stack=flota\nflota.autoscaler-token=listed\n');
  });

  it('keeps the worker counts the autoscaler chose, unless they are set', () => {
    writeFileSync(join(swarm, 'services', 'flota_worker-cpu'), '6\n');
    writeFileSync(join(swarm, 'services', 'flota_worker-gpu'), '1\n');
    expect(deploy(['--autoscale']).deployed).toMatchObject({ CPU_WORKERS: '6', GPU_WORKERS: '1' });
    expect(deploy(['--autoscale'], { CPU_WORKERS: '3' }).deployed).toMatchObject({
      CPU_WORKERS: '3',
      GPU_WORKERS: '1',
    });
    expect(deploy([]).deployed?.CPU_WORKERS).toBeUndefined();
  });

  it('refuses --autoscale while the api_tokens secret predates the autoscaler', () => {
    // A stack deployed before the autoscaler existed: every secret but its token, unlabelled.
    for (const name of ['api_tokens', 'queue_url', 'worker_token']) {
      writeFileSync(join(swarm, 'secrets', `flota_${name}`), 'flota.stack=flota\n');
    }
    const refused = deploy(['--autoscale']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(
      /secret flota_api_tokens predates the autoscaler and lacks its token: replace it \(docs\/DEPLOY.md, Autoscaling\)/,
    );
    expect(refused.deployed).toBeUndefined();
    expect(deploy([]).status).toBe(0);
    // With API tokens off the master asks the autoscaler for none.
    expect(deploy(['--autoscale'], { API_TOKENS_FILE: '' }).status).toBe(0);
  });
});
