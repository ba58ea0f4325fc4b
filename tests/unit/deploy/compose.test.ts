/**
 * docker-compose.yml as a Compose implementation reads it: Debian's
 * docker-compose validates it against its Compose-spec schema and
 * interpolates it without an engine. Plus what the file promises: the same
 * secrets deploy/make-secrets.sh writes, one worker id per worker enrolling
 * with a join token (no shared worker password), the stack's security
 * settings, and Prometheus and Grafana only in the monitoring profile.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Compose,
  composeConfig,
  flotaServices,
  ROOT,
  run,
  runOk,
  secretSources,
  stackConfig,
} from './support/tools.ts';

let plain: { config: Compose; warnings: string };
let monitoring: { config: Compose; warnings: string };
let dir = '';

/** Volume mounts as "source -> target", from the short or the long syntax. */
function mounts(volumes: unknown): string[] {
  return ((volumes ?? []) as Array<string | { source: string; target: string }>).map((v) => {
    const [source = '', target = ''] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
    return `${source.replace(ROOT, '')} -> ${target}`;
  });
}

beforeAll(() => {
  plain = composeConfig();
  monitoring = composeConfig(['monitoring']);
  dir = mkdtempSync(join(tmpdir(), 'flota-deploy-compose-'));
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('docker-compose.yml', () => {
  it('is valid, with and without the monitoring profile, and nothing is ignored', () => {
    expect(plain.warnings).toBe('');
    expect(monitoring.warnings).toBe('');
    const profiles = Object.entries(monitoring.config.services).map(
      ([name, service]) => `${name}: ${(service.profiles as string[] | undefined) ?? 'always'}`,
    );
    expect(profiles.sort()).toEqual([
      'grafana: monitoring',
      'master: always',
      'mosquitto: always',
      'prometheus: monitoring',
      'redis: always',
      'worker-cpu-1: always',
      'worker-cpu-2: always',
    ]);
  });

  it('is checked by a validator that does reject a broken file', () => {
    const broken = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').replace(
      '    restart: unless-stopped\n',
      '    restart: unless-stopped\n    bogus_option: 1\n',
    );
    const file = join(dir, 'docker-compose.yml');
    writeFileSync(file, broken);
    const result = run('docker-compose', ['-f', file, '--project-directory', ROOT, 'config', '-q']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/bogus_option/);
  }, 30_000);

  it('builds both images from the Dockerfile', () => {
    const services = plain.config.services;
    expect(services.master?.build).toMatchObject({ target: 'master' });
    for (const name of ['worker-cpu-1', 'worker-cpu-2']) {
      expect(services[name]?.build, name).toMatchObject({ target: 'worker' });
    }
  });

  it('gives each worker its own id, enrolling for its own credential with the join token', () => {
    const ids = flotaServices(plain.config)
      .filter(([, role]) => role === 'worker')
      .map(([name, , service]) => {
        expect(service.environment?.WORKER_JOIN_TOKEN_FILE, name).toBe(
          '/run/secrets/worker_join_cpu',
        );
        // Username and password come from the enrollment: the id and its credential.
        expect(service.environment?.MQTT_USERNAME, name).toBeUndefined();
        expect(service.environment?.MQTT_PASSWORD_FILE, name).toBeUndefined();
        expect(secretSources(service).sort(), name).toEqual(['tls_ca', 'worker_join_cpu']);
        return service.environment?.WORKER_ID;
      });
    expect(ids).toEqual(['cpu-1', 'cpu-2']);
  });

  it('sets the master and Mosquitto up as the stack does', () => {
    const stack = stackConfig();
    const compose = plain.config.services;
    const keys = [
      'HOST',
      'MQTT_USERNAME',
      'MQTT_PASSWORD_FILE',
      'MQTT_DYNSEC',
      'FLOTA_SECRET_FILE',
      'FLOTA_DATA_DIR',
      'TLS_CERT',
      'TLS_KEY',
      'TLS_CA',
    ];
    for (const key of keys) {
      expect(compose.master?.environment?.[key], key).toBe(
        stack.services.master?.environment?.[key],
      );
    }
    expect(secretSources(compose.master!).sort()).toEqual(
      secretSources(stack.services.master!).sort(),
    );
    expect(mounts(compose.master?.volumes)).toEqual(['master-data -> /var/lib/flota']);
    expect(secretSources(compose.mosquitto!).sort()).toEqual(
      secretSources(stack.services.mosquitto!).sort(),
    );
    expect(mounts(compose.mosquitto?.volumes)).toEqual([
      'deploy/mosquitto/mosquitto.conf -> /mosquitto/config/mosquitto.conf',
      'deploy/mosquitto/entrypoint.sh -> /flota/entrypoint.sh',
      'mosquitto-data -> /mosquitto/data',
    ]);
  });

  it('reads exactly the secret files deploy/make-secrets.sh writes, but the Swarm-only ones', () => {
    const secretsDir = join(dir, 'secrets');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secretsDir } });
    // The autoscaler scales Swarm services, and the GPU and Python workers
    // are Swarm's: Compose has none of them. The CA's key never leaves the
    // machine.
    const notHere = ['autoscaler_api_token', 'worker_join_gpu', 'worker_join_python', 'tls_ca_key'];
    const written = readdirSync(secretsDir)
      .filter((name) => !notHere.includes(name))
      .sort();
    const files = Object.values(monitoring.config.secrets ?? {}).map((s) => basename(s.file ?? ''));
    expect(files.sort()).toEqual(written);
    for (const secret of Object.values(monitoring.config.secrets ?? {})) {
      expect(secret.file).toBe(join(ROOT, 'deploy/secrets', basename(secret.file ?? '')));
    }
  });

  it('keeps Redis on AOF and never evicts, like the stack', () => {
    expect(plain.config.services.redis?.command).toEqual(
      expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']),
    );
    expect(mounts(plain.config.services.redis?.volumes)).toEqual(['redis-data -> /data']);
  });

  it('scrapes the master and provisions the flota dashboard in Grafana', () => {
    const prometheus = readFileSync(join(ROOT, 'deploy/monitoring/prometheus.yml'), 'utf8');
    expect(prometheus).toMatch(/metrics_path: \/metrics/);
    expect(prometheus).toMatch(/targets: \["master:8080"\]/);
    // Over HTTPS, trusting the master by the CA mounted into Prometheus.
    expect(prometheus).toMatch(/scheme: https\n\s+tls_config:\n\s+ca_file: \/run\/secrets\/tls_ca/);
    expect(secretSources(monitoring.config.services.prometheus!)).toEqual(['tls_ca']);
    expect(mounts(monitoring.config.services.grafana?.volumes)).toEqual(
      expect.arrayContaining([
        'deploy/monitoring/grafana/provisioning -> /etc/grafana/provisioning',
        'deploy/monitoring/grafana/dashboards -> /etc/grafana/dashboards',
      ]),
    );
  });
});
