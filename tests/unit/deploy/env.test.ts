/**
 * Every variable stack.yml and docker-compose.yml give a flota container is
 * one its config reads, secrets arrive only as files, and the environment
 * each service ends up with passes the real config loader (master, worker,
 * autoscaler and the Python worker's) and fits together: each worker's join
 * token admits its id under the master's secret, the master's certificate is
 * one the workers and the autoscaler trust for the name they dial.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAutoscalerConfig } from '../../../autoscaler/src/config.ts';
import { apiTokensOf, configuredSecret, loadMasterConfig } from '../../../master/src/config.ts';
import { WorkerCredentials } from '../../../master/src/security/worker-credentials.ts';
import { loadWorkerConfig } from '../../../worker/src/config.ts';
import {
  type Compose,
  composeConfig,
  ENTRYPOINT_FILE_VARS,
  flotaServices,
  pythonWorkerConfig,
  ROOT,
  runOk,
  secretSources,
  serviceEnv,
  stackConfig,
} from './support/tools.ts';

/** The variable names a config loader reads, recorded from an empty environment. */
function namesRead(load: (env: NodeJS.ProcessEnv) => unknown): Set<string> {
  const seen = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_target, key) {
      if (typeof key === 'string') seen.add(key);
      return undefined;
    },
  });
  load(env);
  return seen;
}

const KNOWN = {
  master: namesRead(loadMasterConfig),
  worker: namesRead(loadWorkerConfig),
  autoscaler: namesRead(loadAutoscalerConfig),
  'python-worker': new Set(pythonWorkerConfig('names') as string[]),
};

/** What the Python worker's loader makes of an environment (config.py's WorkerConfig). */
interface PythonWorkerConfig {
  error?: string;
  worker_id: string;
  worker_token: string | null;
  join_token: string | null;
  mqtt_username: string | null;
  mqtt_password: string | null;
  master_grpc: string;
  grpc_tls: boolean;
  tls_ca: string | null;
}

/**
 * Variables a container runtime reads, not flota: allowed on that role only,
 * by exact name. The NVIDIA runtime mounts the driver libraries and
 * nvidia-smi that NVIDIA_DRIVER_CAPABILITIES asks for (worker-gpu); Node
 * adds NODE_EXTRA_CA_CERTS to the CAs its fetch trusts (the autoscaler's
 * calls to the master over HTTPS).
 */
const RUNTIME_VARS: Record<keyof typeof KNOWN, ReadonlySet<string>> = {
  master: new Set(),
  worker: new Set(['NVIDIA_DRIVER_CAPABILITIES']),
  autoscaler: new Set(['NODE_EXTRA_CA_CERTS']),
  'python-worker': new Set(),
};

/** Variables that carry a secret: never a literal in a deployment file. */
const SECRET_VARS = [
  'MQTT_PASSWORD',
  'WORKER_TOKEN',
  'WORKER_JOIN_TOKEN',
  'FLOTA_SECRET',
  'QUEUE_URL',
  'GEMINI_API_KEY',
  'OPENAI_API_KEY',
  'API_TOKENS',
  'AUTOSCALE_API_TOKEN',
];

let secretsDir = '';
const variants: Array<[string, Compose]> = [];

beforeAll(() => {
  secretsDir = join(mkdtempSync(join(tmpdir(), 'flota-deploy-env-')), 'secrets');
  runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secretsDir } });
  // The one secret the operator creates by hand (deploy/stack.gemini.yml).
  writeFileSync(join(secretsDir, 'gemini_api_key'), 'a-key-0123456789\n');
  variants.push(['stack.yml', stackConfig()]);
  variants.push(['stack.yml + deploy/stack.gemini.yml', stackConfig(['deploy/stack.gemini.yml'])]);
  variants.push(['docker-compose.yml', composeConfig(['monitoring']).config]);
  variants.push(['stack.yml, API_TOKENS_FILE=', stackConfig([], { API_TOKENS_FILE: '' })]);
  variants.push(['stack.yml + deploy/stack.no-tls.yml', stackConfig(['deploy/stack.no-tls.yml'])]);
  credentialsDir = mkdtempSync(join(tmpdir(), 'flota-deploy-env-master-'));
}, 60_000);

afterAll(() => {
  if (secretsDir) rmSync(dirname(secretsDir), { recursive: true, force: true });
  if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
});

let credentialsDir = '';
const tlsOff = (file: string) => file.includes('no-tls');

/** The PEM text of what a TLS_* variable names (its path already mapped into secretsDir). */
function pem(path: string | undefined): string {
  if (!path) throw new Error('no TLS file');
  return readFileSync(path, 'utf8');
}

function variableProblems(config: Compose): string[] {
  const problems: string[] = [];
  for (const [name, role, service] of flotaServices(config)) {
    for (const key of Object.keys(service.environment ?? {})) {
      if (KNOWN[role].has(key) || RUNTIME_VARS[role].has(key)) continue;
      const base = key.endsWith('_FILE') ? key.slice(0, -'_FILE'.length) : undefined;
      if (base === undefined) problems.push(`${name}: ${key} is not a ${role} variable`);
      else if (!ENTRYPOINT_FILE_VARS.has(base)) {
        problems.push(`${name}: the entrypoint reads no ${key}`);
      } else if (!KNOWN[role].has(base)) {
        problems.push(`${name}: ${base} is not a ${role} variable`);
      }
    }
  }
  return problems;
}

function secretProblems(config: Compose): string[] {
  const problems: string[] = [];
  for (const [name, , service] of flotaServices(config)) {
    const env = service.environment ?? {};
    for (const key of SECRET_VARS) {
      if (env[key] !== undefined) problems.push(`${name} sets ${key} as a literal`);
    }
    for (const [key, value] of Object.entries(env)) {
      // Blank counts as unset (API_TOKENS_FILE= turns API tokens off). Any
      // other path under /run/secrets (TLS_CERT, NODE_EXTRA_CA_CERTS) is a
      // secret file too.
      if (!value?.trim()) continue;
      if (!key.endsWith('_FILE') && !value.startsWith('/run/secrets/')) continue;
      const secret = /^\/run\/secrets\/([a-z0-9_]+)$/.exec(value ?? '')?.[1];
      if (secret === undefined || !secretSources(service).includes(secret)) {
        problems.push(`${name}: ${key}=${value} is not mounted`);
      }
    }
  }
  return problems;
}

describe('deployment environment', () => {
  it('finds the flota services in every file', () => {
    for (const [file, config] of variants) {
      const roles = flotaServices(config).map(([, role]) => role);
      expect(roles, file).toContain('master');
      expect(roles, file).toContain('worker');
      // Compose runs on one host without Swarm: nothing there for the swarm driver to scale.
      if (file.startsWith('stack.yml')) expect(roles, file).toContain('autoscaler');
    }
  });

  it('knows the autoscaler apart from the master, whose image it runs', () => {
    expect(KNOWN.autoscaler).toContain('AUTOSCALE_POOLS');
    expect(KNOWN.autoscaler).not.toContain('QUEUE_URL');
  });

  it('finds the Python worker in the stack, and the variables its loader reads', () => {
    const roles = flotaServices(variants[0]![1]).map(([name, role]) => `${name}: ${role}`);
    expect(roles).toContain('worker-python: python-worker');
    expect(KNOWN['python-worker']).toContain('WORKER_JOIN_TOKEN');
    expect(KNOWN['python-worker']).toContain('OPENAI_BASE_URL');
    expect(KNOWN['python-worker']).not.toContain('GEMINI_API_KEY');
  });

  it('sets only variables the master, worker and autoscaler configs read', () => {
    for (const [file, config] of variants) expect(variableProblems(config), file).toEqual([]);
  });

  it('passes secrets only as files mounted into that service', () => {
    for (const [file, config] of variants) expect(secretProblems(config), file).toEqual([]);
  });

  it('would catch an unknown variable, a literal secret and an unmounted secret file', () => {
    const bad: Compose = {
      services: {
        master: {
          image: 'r/flota-master:1',
          environment: {
            PORTT: '8080',
            QUEUE_URL: 'redis://:pw@redis:6379',
            // A runtime variable of the workers' only.
            NVIDIA_DRIVER_CAPABILITIES: 'all',
          },
        },
        worker: {
          image: 'r/flota-worker:1',
          environment: {
            SLOTS_FILE: '/run/secrets/slots',
            WORKER_TOKEN_FILE: '/run/secrets/t',
            TLS_CA: '/run/secrets/ca',
          },
          secrets: ['other'],
        },
      },
    };
    expect(variableProblems(bad)).toEqual([
      'master: PORTT is not a master variable',
      'master: NVIDIA_DRIVER_CAPABILITIES is not a master variable',
      'worker: the entrypoint reads no SLOTS_FILE',
    ]);
    expect(secretProblems(bad)).toEqual([
      'master sets QUEUE_URL as a literal',
      'worker: SLOTS_FILE=/run/secrets/slots is not mounted',
      'worker: WORKER_TOKEN_FILE=/run/secrets/t is not mounted',
      'worker: TLS_CA=/run/secrets/ca is not mounted',
    ]);
  });

  it('yields a configuration each loader accepts, workers logging in as themselves', async () => {
    for (const [file, config] of variants) {
      // The master this file sets up, and so the installation secret it signs with.
      const masterService = flotaServices(config).find(([, role]) => role === 'master')?.[2];
      const master = loadMasterConfig(serviceEnv(masterService!, secretsDir));
      const credentials = await WorkerCredentials.open({
        dataDir: credentialsDir,
        secret: configuredSecret(master),
      });
      for (const [name, role, service] of flotaServices(config)) {
        const env = serviceEnv(service, secretsDir);
        const where = `${file}: ${name}`;
        if (role === 'master') {
          const loaded = loadMasterConfig(env);
          expect(loaded.QUEUE_URL, where).toMatch(/^redis:\/\/.*@redis:6379$/);
          expect(loaded.MQTT_URL, where).toBe('mqtt://mosquitto:1883');
          expect(loaded.MQTT_USERNAME, where).toBe('_master');
          expect(loaded.MQTT_DYNSEC, where).toBe(true);
          // A container must listen beyond loopback, and says so.
          expect(loaded.HOST, where).toBe('0.0.0.0');
          expect(configuredSecret(loaded)?.length, where).toBeGreaterThanOrEqual(32);
          expect(loaded.TLS_CERT !== undefined, where).toBe(!tlsOff(file));
          expect(loaded.TLS_KEY !== undefined, where).toBe(!tlsOff(file));
          // Tenant "default" and the autoscaler's.
          const tokens = file.includes('API_TOKENS_FILE=') ? 0 : 2;
          expect(loaded.API_TOKENS_FILE, where).toHaveLength(tokens);
        } else if (role === 'autoscaler') {
          // Checked against the master in the next test.
          expect(() => loadAutoscalerConfig(env), where).not.toThrow();
        } else if (role === 'python-worker') {
          const worker = pythonWorkerConfig(env) as PythonWorkerConfig;
          expect(worker.error, where).toBeUndefined();
          // The same credentials as the TypeScript workers: its own, enrolled for.
          expect(worker.mqtt_username, where).toBeNull();
          expect(worker.mqtt_password, where).toBeNull();
          expect(worker.worker_token, where).toBeNull();
          expect(worker.master_grpc, where).toBe('master:50051');
          expect(worker.worker_id, where).toMatch(/^py-\d+$/);
          const join = credentials.checkJoin(worker.join_token ?? '');
          expect(join, where).toMatchObject({ ok: true });
          expect(worker.worker_id.startsWith((join as { prefix: string }).prefix), where).toBe(
            true,
          );
          expect(worker.grpc_tls, where).toBe(!tlsOff(file));
          if (worker.grpc_tls) {
            const cert = new X509Certificate(pem(master.TLS_CERT?.path));
            expect(cert.verify(new X509Certificate(worker.tls_ca ?? '').publicKey), where).toBe(
              true,
            );
          }
        } else {
          const worker = loadWorkerConfig(env);
          // It logs in to MQTT as its id, with the credential it enrolls for.
          expect(worker.mqttUsername, where).toBeUndefined();
          expect(worker.mqttPassword, where).toBeUndefined();
          expect(worker.workerToken, where).toBeUndefined();
          expect(worker.masterGrpc, where).toBe('master:50051');
          expect(worker.workerId, where).toMatch(/^(cpu|gpu)-\d+$/);
          const join = credentials.checkJoin(worker.joinToken);
          expect(join, where).toMatchObject({ ok: true });
          expect(worker.workerId.startsWith((join as { prefix: string }).prefix), where).toBe(true);
          expect(worker.grpcTls, where).toBe(!tlsOff(file));
          if (worker.grpcTls) {
            // The master's certificate chains to the CA the worker trusts, for the host it dials.
            const cert = new X509Certificate(pem(master.TLS_CERT?.path));
            const ca = new X509Certificate(worker.tlsCa ?? '');
            expect(cert.verify(ca.publicKey), where).toBe(true);
            expect(cert.checkHost(worker.masterGrpc.split(':')[0] ?? ''), where).toBe('master');
          }
        }
      }
    }
  });

  it('points the autoscaler at the master with a token it accepts, and at services that exist', () => {
    for (const [file, config] of variants.filter(([f]) => f.startsWith('stack.yml'))) {
      const services = flotaServices(config);
      const envOf = (role: string) => {
        const found = services.find(([, r]) => r === role);
        if (!found) throw new Error(`${file}: no ${role}`);
        return serviceEnv(found[2], secretsDir);
      };
      const autoscalerEnv = envOf('autoscaler');
      const autoscaler = loadAutoscalerConfig(autoscalerEnv);
      expect(autoscaler.AUTOSCALE_DRIVER, file).toBe('swarm');
      expect(autoscaler.AUTOSCALE_STACK, file).toBe('flota');
      const master = loadMasterConfig(envOf('master'));
      if (tlsOff(file)) expect(autoscaler.AUTOSCALE_MASTER_URL, file).toBe('http://master:8080');
      else {
        expect(autoscaler.AUTOSCALE_MASTER_URL, file).toBe('https://master:8080');
        // Node's fetch trusts the master by the CA NODE_EXTRA_CA_CERTS names.
        const cert = new X509Certificate(pem(master.TLS_CERT?.path));
        const ca = new X509Certificate(pem(autoscalerEnv.NODE_EXTRA_CA_CERTS));
        expect(cert.verify(ca.publicKey), file).toBe(true);
        expect(cert.checkHost('master'), file).toBe('master');
      }
      const tokens = apiTokensOf(master);
      if (file.includes('API_TOKENS_FILE=')) expect(tokens, file).toEqual([]);
      else {
        // It reads every tenant's queues: an admin token.
        expect(
          tokens.find((t) => t.token === autoscaler.AUTOSCALE_API_TOKEN),
          file,
        ).toMatchObject({ tenant: 'autoscaler', role: 'admin' });
      }
      expect(autoscaler.pools.length, file).toBeGreaterThan(0);
      for (const pool of autoscaler.pools) {
        const service = config.services[pool.name];
        expect(service, `${file}: pool ${pool.name}`).toBeDefined();
        expect(service?.environment?.WORKER_ID, file).toBe(`${pool.workerPrefix}{{.Task.Slot}}`);
      }
    }
  });
});
