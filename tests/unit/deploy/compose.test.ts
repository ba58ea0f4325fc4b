/**
 * docker-compose.yml as a Compose implementation reads it: Debian's
 * docker-compose validates it against its Compose-spec schema and
 * interpolates it without an engine. Plus what the file promises: the same
 * secrets deploy/make-secrets.sh writes, one worker id per worker, and
 * Prometheus and Grafana only in the monitoring profile.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Compose, composeConfig, flotaServices, ROOT, run, runOk } from './support/tools.ts';

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

  it('gives each worker its own id, which is also its MQTT user', () => {
    const ids = flotaServices(plain.config)
      .filter(([, role]) => role === 'worker')
      .map(([, , service]) => {
        expect(service.environment?.MQTT_USERNAME).toBe(service.environment?.WORKER_ID);
        return service.environment?.WORKER_ID;
      });
    expect(ids).toEqual(['cpu-1', 'cpu-2']);
  });

  it('reads exactly the secret files deploy/make-secrets.sh writes, but the Swarm-only ones', () => {
    const secretsDir = join(dir, 'secrets');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secretsDir } });
    // The autoscaler scales Swarm services: Compose has none for it.
    const swarmOnly = ['autoscaler_api_token'];
    const written = readdirSync(secretsDir)
      .filter((name) => !swarmOnly.includes(name))
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
    expect(mounts(monitoring.config.services.grafana?.volumes)).toEqual(
      expect.arrayContaining([
        'deploy/monitoring/grafana/provisioning -> /etc/grafana/provisioning',
        'deploy/monitoring/grafana/dashboards -> /etc/grafana/dashboards',
      ]),
    );
  });
});
