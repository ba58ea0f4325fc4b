/**
 * stack.yml's services, each started on its own machine (network namespace)
 * with what stack.yml gives it: secrets from deploy/make-secrets.sh,
 * Mosquitto's dynamic-security file from deploy/mosquitto/entrypoint.sh and
 * its mosquitto.conf, Redis's command line, and the master's and workers'
 * environment (secrets read the way the images' entrypoint reads them). The
 * service names stack.yml's URLs use are replaced by the machines' addresses,
 * as the overlay network's DNS would resolve them; ports stay the stack's own.
 * Only file paths, Mosquitto's user and plugin path differ, and TLS is off
 * (deploy/stack.no-tls.yml): the master's certificate names `master`, not
 * the machines' addresses, and the rehearsal is about the network.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FlotaProcess } from '../../e2e/support/flota-process.ts';
import { FLOTA_BIN, REPO_ROOT } from '../../e2e/support/flota-process.ts';
import { baseChildEnv } from '../../helpers/child-env.ts';
import { DYNSEC_PLUGIN } from '../../helpers/mosquitto-server.ts';
import {
  type Compose,
  type ComposeService,
  ROOT,
  runOk,
  serviceEnv,
  stackConfig,
} from '../../unit/deploy/support/tools.ts';
import type { Machine } from './netns.ts';
import { spawnInNetns } from './ns-process.ts';

/** The stack's services other machines reach by name. */
export type ServiceName = 'mosquitto' | 'redis' | 'master';
export type ServiceAddresses = Record<ServiceName, string>;

export interface StackFiles {
  stack: Compose;
  secretsDir: string;
  secret(name: string): string;
  /** deploy/mosquitto/mosquitto.conf with this run's paths. */
  mosquittoConf: string;
  /** stack.yml's redis-server arguments with this run's paths. */
  redisArgs: string[];
  /** FLOTA_DATA_DIR for the master: unused with QUEUE_URL set, but keeps a stray store out of the repo. */
  masterDataDir: string;
}

function service(stack: Compose, name: string): ComposeService {
  const found = stack.services[name];
  if (!found) throw new Error(`stack.yml has no service ${name}`);
  return found;
}

/** Writes secrets, Mosquitto's auth files and configs under `dir`, as deploy.sh and the entrypoint would. */
export function prepareStack(dir: string): StackFiles {
  const stack = stackConfig(['deploy/stack.no-tls.yml']);
  const secretsDir = join(dir, 'secrets');
  const mosquittoData = join(dir, 'mosquitto-data');
  const redisData = join(dir, 'redis-data');
  const masterDataDir = join(dir, 'master-data');
  for (const d of [mosquittoData, redisData, masterDataDir]) mkdirSync(d, { recursive: true });
  runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secretsDir } });
  runOk('/bin/sh', [join(ROOT, 'deploy/mosquitto/entrypoint.sh'), '--prepare-only'], {
    env: { SECRETS_DIR: secretsDir, DYNSEC_FILE: join(mosquittoData, 'dynamic-security.json') },
  });
  const mosquittoConf = join(dir, 'mosquitto.conf');
  const conf = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8')
    .replace(/^plugin \S+$/m, `plugin ${DYNSEC_PLUGIN}`)
    .replaceAll('/mosquitto/data/', `${mosquittoData}/`);
  // As root, Mosquitto switches to its own user, which cannot write our temp dirs.
  writeFileSync(mosquittoConf, `${conf}\nuser root\n`);

  const redisCommand = service(stack, 'redis').command ?? [];
  if (redisCommand[0] !== 'redis-server') throw new Error('stack.yml: redis runs redis-server');
  const redisArgs = [
    ...redisCommand
      .slice(1)
      .map((arg) => (arg.startsWith('/run/secrets/') ? join(secretsDir, arg.slice(13)) : arg)),
    '--dir',
    redisData,
  ];
  return {
    stack,
    secretsDir,
    secret: (name) => readFileSync(join(secretsDir, name), 'utf8').trim(),
    mosquittoConf,
    redisArgs,
    masterDataDir,
  };
}

/** `mqtt://mosquitto:1883` → `mqtt://10.213.7.10:1883`, and likewise `@redis:`, `master:`. */
export function resolveServices(
  env: Record<string, string>,
  addresses: ServiceAddresses,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    let resolved = value;
    for (const [name, address] of Object.entries(addresses)) {
      resolved = resolved.replace(new RegExp(`(^|//|@)${name}(?=:\\d)`, 'g'), `$1${address}`);
    }
    out[key] = resolved;
  }
  return out;
}

/** Swarm's templates of a replicated service, filled in for one task. */
function forTask(svc: ComposeService, slot: number, node: string): ComposeService {
  const environment: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(svc.environment ?? {})) {
    environment[key] =
      value?.replaceAll('{{.Task.Slot}}', String(slot)).replaceAll('{{.Node.Hostname}}', node) ??
      null;
  }
  return { ...svc, environment };
}

export function startMosquittoOn(machine: Machine, files: StackFiles): FlotaProcess {
  return spawnInNetns({
    name: `mosquitto on ${machine.name}`,
    netns: machine.netns,
    command: 'mosquitto',
    args: ['-c', files.mosquittoConf],
    env: baseChildEnv(),
  });
}

export function startRedisOn(machine: Machine, files: StackFiles): FlotaProcess {
  return spawnInNetns({
    name: `redis on ${machine.name}`,
    netns: machine.netns,
    command: 'redis-server',
    args: files.redisArgs,
    env: baseChildEnv(),
  });
}

function startFlota(
  machine: Machine,
  name: string,
  role: 'master' | 'worker',
  env: Record<string, string>,
): FlotaProcess {
  return spawnInNetns({
    name: `${name} on ${machine.name}`,
    netns: machine.netns,
    command: process.execPath,
    args: [FLOTA_BIN, role],
    cwd: REPO_ROOT,
    env: { ...baseChildEnv(), ...env },
  });
}

export function startMasterOn(
  machine: Machine,
  files: StackFiles,
  addresses: ServiceAddresses,
): FlotaProcess {
  const env = serviceEnv(service(files.stack, 'master'), files.secretsDir);
  return startFlota(machine, 'master', 'master', {
    ...resolveServices(env, addresses),
    FLOTA_DATA_DIR: files.masterDataDir,
    // The rehearsal polls every task every few ms to time the failover; the
    // stack's default rate limit would answer that with 429s for a minute.
    RATE_LIMIT_RPM: '0',
  });
}

/** A worker-cpu task: slot `slot` (its id is cpu-<slot>) on `machine`. */
export function startWorkerOn(
  machine: Machine,
  slot: number,
  files: StackFiles,
  addresses: ServiceAddresses,
  extra: Record<string, string>,
): FlotaProcess {
  const svc = forTask(service(files.stack, 'worker-cpu'), slot, machine.name);
  const env = serviceEnv(svc, files.secretsDir);
  return startFlota(machine, env.WORKER_ID ?? `slot ${slot}`, 'worker', {
    ...resolveServices(env, addresses),
    ...extra,
  });
}
