/**
 * Mosquitto and Redis set up the way docker-compose.yml and stack.yml set
 * them up: secrets from deploy/make-secrets.sh, Mosquitto's dynamic-security
 * file from deploy/mosquitto/entrypoint.sh, its mosquitto.conf, and Redis's
 * command line from stack.yml. Only ports, paths and the user differ.
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ManagedServer, startManagedServer } from '../../helpers/managed-server.ts';
import { DYNSEC_PLUGIN, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { answersPing } from '../../helpers/redis-server.ts';
import { ROOT, runOk, stackConfig } from '../../unit/deploy/support/tools.ts';

export interface DeployFixture {
  /** Reads one generated secret. */
  secret(name: string): string;
  /** Where that secret's file is (what /run/secrets/<name> stands for). */
  secretPath(name: string): string;
  /** Mosquitto's data volume: the dynamic-security file and persistence. */
  dataDir: string;
  mosquitto: ManagedServer;
  redis: ManagedServer;
  /** The secret queue_url, pointed at this Redis. */
  queueUrl: string;
  stop(): Promise<void>;
}

/**
 * deploy/mosquitto/entrypoint.sh --prepare-only with these secrets and data
 * dir, then Mosquitto with our mosquitto.conf, after the helper's lines (its
 * settings win; the helper's listener on a free loopback port replaces ours
 * on 1883, Debian's plugin path the image's).
 */
export async function startStackMosquitto(secrets: string, data: string): Promise<ManagedServer> {
  runOk('/bin/sh', [join(ROOT, 'deploy/mosquitto/entrypoint.sh'), '--prepare-only'], {
    env: { SECRETS_DIR: secrets, DYNSEC_FILE: join(data, 'dynamic-security.json') },
  });
  const conf = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('listener '))
    .join('\n')
    .replace(/^plugin \S+$/m, `plugin ${DYNSEC_PLUGIN}`)
    .replaceAll('/mosquitto/data/', `${data}/`);
  return startMosquitto({ extraConfig: conf });
}

export async function startDeployFixture(): Promise<DeployFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'flota-deploy-'));
  const secrets = join(dir, 'secrets');
  const data = join(dir, 'data');
  mkdirSync(data);
  const secret = (name: string) => readFileSync(join(secrets, name), 'utf8').trim();
  const started: ManagedServer[] = [];
  try {
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    const mosquitto = await startStackMosquitto(secrets, data);
    started.push(mosquitto);

    const redis = await startStackRedis(secrets, data);
    started.push(redis);
    const queueUrl = secret('queue_url').replace('@redis:6379', `@127.0.0.1:${redis.port}`);
    return {
      secret,
      secretPath: (name) => join(secrets, name),
      dataDir: data,
      mosquitto,
      redis,
      queueUrl,
      async stop() {
        await Promise.all(started.map((s) => s.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * redis-server with stack.yml's command line (AOF on, its ACL file from
 * `secrets` as deploy/make-secrets.sh writes them), its data in `data`, on a
 * free loopback port.
 */
export function startStackRedis(secrets: string, data: string): Promise<ManagedServer> {
  const command = stackConfig().services.redis?.command ?? [];
  const args = command
    .slice(1)
    .map((arg) => (arg === '/run/secrets/redis_acl' ? join(secrets, 'redis_acl') : arg));
  return startManagedServer({
    what: 'redis-server (stack.yml command)',
    command: 'redis-server',
    prepare: async (port) => [
      ...args,
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      data,
    ],
    ready: (port) => answersPing(port, true),
    url: (port) => `redis://127.0.0.1:${port}`,
  });
}
