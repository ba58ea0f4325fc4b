/**
 * stack.yml as Docker reads it (`docker stack config` validates against the
 * compose v3 schema and interpolates, with no engine), and the choices
 * docs/DEPLOY.md promises: one master replaced stop-first, workers keyed on
 * their slot, GPU placement, an opt-in Python worker, secrets from deploy.sh,
 * limits and log rotation,
 * an opt-in autoscaler on a manager with the Docker socket, and the security
 * model: a credential per worker (no shared worker secret), Mosquitto's
 * dynamic security, TLS, an encrypted overlay network.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_CONVERSATION_CHARS } from '../../../proto/src/schemas/task.ts';
import { type Compose, ROOT, run, secretSources, stackConfig } from './support/tools.ts';

/** The secrets deploy.sh creates: the STACK_SECRETS array of deploy/lib.sh. */
function deploySecrets(): string[] {
  const lib = readFileSync(join(ROOT, 'deploy/lib.sh'), 'utf8');
  const body = /^STACK_SECRETS=\(\n([\s\S]*?)\n\)$/m.exec(lib)?.[1];
  if (!body) throw new Error('no STACK_SECRETS array in deploy/lib.sh');
  return body.split('\n').map((l) => l.trim());
}

let stack: Compose;

beforeAll(() => {
  stack = stackConfig([], { STACK: 'demo', REGISTRY: 'reg.example:5000/flota', TAG: '1.2.3-abc' });
}, 60_000);

describe('stack.yml', () => {
  it('is valid for docker stack config, alone and with the Gemini and no-TLS overrides', () => {
    expect(Object.keys(stack.services).sort()).toEqual([
      'autoscaler',
      'master',
      'mosquitto',
      'redis',
      'worker-cpu',
      'worker-gpu',
      'worker-python',
    ]);
    const gemini = stackConfig(['deploy/stack.gemini.yml']);
    expect(gemini.services['worker-cpu']?.environment?.PROVIDER).toBe('gemini');
    expect(secretSources(gemini.services['worker-cpu']!).sort()).toEqual([
      'gemini_api_key',
      'tls_ca',
      'worker_join_cpu',
    ]);
    const plain = stackConfig(['deploy/stack.no-tls.yml']);
    expect(plain.services.master?.environment?.TLS_CERT).toBe(' ');
    for (const worker of ['worker-cpu', 'worker-gpu', 'worker-python']) {
      expect(plain.services[worker]?.environment?.GRPC_TLS, worker).toBe('false');
    }
  }, 30_000);

  it('is checked by a validator that does reject a broken file', () => {
    const broken = readFileSync(join(ROOT, 'stack.yml'), 'utf8').replace(
      '    stop_grace_period: 20s\n',
      '    stop_grace_period: 20s\n    bogus_option: 1\n',
    );
    const result = run('docker', ['stack', 'config', '-c', '-'], { input: broken });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/bogus_option/);
  });

  it('uses the registry, tag and stack name it is deployed with', () => {
    expect(stack.services.master?.image).toBe('reg.example:5000/flota/flota-master:1.2.3-abc');
    expect(stack.services['worker-cpu']?.image).toBe(
      'reg.example:5000/flota/flota-worker:1.2.3-abc',
    );
    expect(stack.services['worker-python']?.image).toBe(
      'reg.example:5000/flota/flota-worker-python:1.2.3-abc',
    );
    for (const secret of Object.values(stack.secrets ?? {})) {
      expect(secret.name).toMatch(/^demo_/);
    }
  });

  it('runs one master, replaced stop-first and rolled back on failure, with a health check', () => {
    const master = stack.services.master!;
    const deploy = master.deploy as Record<string, Record<string, unknown> | number>;
    expect(deploy.replicas).toBe(1);
    expect(deploy.update_config).toMatchObject({ order: 'stop-first', failure_action: 'rollback' });
    expect(deploy.rollback_config).toMatchObject({ order: 'stop-first' });
    expect(deploy.restart_policy).toMatchObject({ condition: 'any' });
    // The test itself comes from the image (GET /readyz); the stack sets the timings.
    expect(master.healthcheck).toMatchObject({ retries: 6, start_period: '30s' });
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/HEALTHCHECK[\s\S]*\/readyz/);
  });

  it('names each worker after its slot and never runs two tasks of one slot at once', () => {
    for (const [name, prefix, kind] of [
      ['worker-cpu', 'cpu', 'cpu'],
      ['worker-gpu', 'gpu', 'gpu'],
      ['worker-python', 'py', 'cpu'],
    ] as const) {
      const worker = stack.services[name]!;
      expect(worker.environment?.WORKER_ID).toBe(`${prefix}-{{.Task.Slot}}`);
      expect(worker.hostname).toBe(`${prefix}-{{.Task.Slot}}`);
      expect(worker.environment?.WORKER_KIND).toBe(kind);
      expect(worker.deploy?.update_config).toMatchObject({ order: 'stop-first' });
      // Longer than SHUTDOWN_GRACE_MS plus the 5 s the worker waits for abort reports.
      const graceMs = Number(worker.environment?.SHUTDOWN_GRACE_MS);
      expect(Number.parseInt(String(worker.stop_grace_period), 10) * 1000).toBeGreaterThan(
        graceMs + 5_000,
      );
    }
    expect(stack.services['worker-cpu']?.deploy?.replicas).toBeGreaterThanOrEqual(2);
  });

  it('runs the Python worker only when asked, read-only, labelled for tasks that want it', () => {
    const python = stack.services['worker-python']!;
    expect(python.deploy?.replicas).toBe(0);
    expect(
      stackConfig([], { PYTHON_WORKERS: '3' }).services['worker-python']?.deploy?.replicas,
    ).toBe(3);
    // Its gRPC code comes with the image (Dockerfile, stage python-build).
    expect(python.read_only).toBe(true);
    expect(python.environment).toMatchObject({
      PROVIDER: 'echo',
      SLOTS: '2',
      LABELS: 'node={{.Node.Hostname}},runtime=python',
    });
    const openai = stackConfig([], {
      PYTHON_PROVIDER: 'openai',
      PYTHON_MODELS: 'llama3.2:3b',
      PYTHON_OPENAI_BASE_URL: 'http://10.0.0.7:8000/v1',
    }).services['worker-python']?.environment;
    expect(openai).toMatchObject({
      PROVIDER: 'openai',
      MODELS: 'llama3.2:3b',
      OPENAI_BASE_URL: 'http://10.0.0.7:8000/v1',
    });
  });

  it('places GPU workers on gpu=true nodes, one GPU each', () => {
    const deploy = stack.services['worker-gpu']!.deploy as {
      placement: { constraints: string[] };
      resources: { reservations: { generic_resources: unknown[] } };
    };
    expect(deploy.placement.constraints).toContain('node.labels.gpu == true');
    expect(deploy.resources.reservations.generic_resources).toEqual([
      { discrete_resource_spec: { kind: 'GPU', value: 1 } },
    ]);
  });

  it('agrees with docs/DEPLOY.md on the GPU kind, its variable and the NVIDIA runtime', () => {
    const spec = (
      stack.services['worker-gpu']!.deploy as {
        resources: {
          reservations: { generic_resources: [{ discrete_resource_spec: { kind: string } }] };
        };
      }
    ).resources.reservations.generic_resources[0].discrete_resource_spec;
    const docs = readFileSync(join(ROOT, 'docs/DEPLOY.md'), 'utf8');
    // Swarm exports DOCKER_RESOURCE_<kind, upper-cased>; swarm-resource must name it.
    const variable = /swarm-resource = "([^"]+)"/.exec(docs)?.[1];
    expect(variable).toBe(`DOCKER_RESOURCE_${spec.kind.toUpperCase()}`);
    const daemonJson = /```json\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
    const daemon = JSON.parse(daemonJson) as Record<string, unknown>;
    expect(daemon['default-runtime']).toBe('nvidia');
    const advertised = daemon['node-generic-resources'] as string[];
    expect(advertised.length).toBeGreaterThan(0);
    for (const entry of advertised) expect(entry.split('=')[0]).toBe(spec.kind);
    const capabilities = stack.services['worker-gpu']?.environment?.NVIDIA_DRIVER_CAPABILITIES;
    expect(capabilities?.split(',').sort()).toEqual(['compute', 'utility']);
  });

  it("points GPU workers at their own node's model server, unless told otherwise", () => {
    const gpu = stack.services['worker-gpu']!;
    expect(gpu.extra_hosts).toEqual(['host.docker.internal:host-gateway']);
    expect(gpu.environment?.OPENAI_BASE_URL).toBe('http://host.docker.internal:11434/v1');
    const elsewhere = stackConfig([], { GPU_OPENAI_BASE_URL: 'http://10.0.0.7:8000/v1' });
    expect(elsewhere.services['worker-gpu']?.environment?.OPENAI_BASE_URL).toBe(
      'http://10.0.0.7:8000/v1',
    );
    // Docker's DNS answers service names, not node hostnames.
    expect(JSON.stringify(gpu.environment)).not.toMatch(/\/\/\{\{\.Node\.Hostname\}\}/);
  });

  it('keeps Redis and Mosquitto with their volumes on the flota.data node', () => {
    for (const name of ['redis', 'mosquitto']) {
      const service = stack.services[name]!;
      const deploy = service.deploy as { placement: { constraints: string[] } };
      expect(deploy.placement.constraints).toContain('node.labels.flota.data == true');
      expect(service.volumes).toEqual([expect.objectContaining({ type: 'volume' })]);
    }
    expect(stack.services.redis?.command).toEqual(
      expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']),
    );
  });

  it('limits resources and rotates logs for every service', () => {
    for (const [name, service] of Object.entries(stack.services)) {
      const limits = (service.deploy as { resources?: { limits?: Record<string, string> } })
        .resources?.limits;
      expect(limits?.cpus, name).toBeDefined();
      expect(limits?.memory, name).toBeDefined();
      expect(service.logging?.options, name).toMatchObject({ 'max-size': expect.any(String) });
      expect(service.logging?.options?.['max-file'], name).toBeDefined();
    }
  });

  it('takes every secret from the swarm, exactly the set deploy.sh creates', () => {
    const secrets = stack.secrets ?? {};
    for (const [key, secret] of Object.entries(secrets)) {
      expect(secret.external, key).toBe(true);
      expect(secret.name).toBe(`demo_${key}`);
    }
    expect(Object.keys(secrets).sort()).toEqual(deploySecrets().sort());
    const mounted = new Set(Object.values(stack.services).flatMap(secretSources));
    expect([...mounted].sort()).toEqual(Object.keys(secrets).sort());
  });

  it('ships the Mosquitto files as configs that exist', () => {
    expect(Object.keys(stack.configs ?? {}).sort()).toEqual([
      'mosquitto_conf',
      'mosquitto_entrypoint',
    ]);
    for (const [key, config] of Object.entries(stack.configs ?? {})) {
      expect(existsSync(config.file ?? ''), `${key}: ${config.file}`).toBe(true);
      expect(config.name, key).toMatch(/^demo_/);
    }
  });

  it('runs Mosquitto with dynamic security on its volume, every client logged in, and bounds', () => {
    const conf = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8');
    expect(conf).toMatch(/^set_tcp_nodelay true$/m);
    expect(conf).toMatch(/^allow_anonymous false$/m);
    expect(conf).toMatch(/^persistence true$/m);
    // Where the eclipse-mosquitto:2.0 image installs the plugin.
    expect(conf).toMatch(/^plugin \/usr\/lib\/mosquitto_dynamic_security\.so$/m);
    // On the data volume: the logins the master adds outlive the container.
    const file = /^plugin_opt_config_file (\S+)$/m.exec(conf)?.[1] ?? '';
    const mosquitto = stack.services.mosquitto!;
    const volume = (mosquitto.volumes as Array<{ source: string; target: string }>)[0]!;
    expect(volume.source).toBe('mosquitto-data');
    expect(file.startsWith(`${volume.target}/`)).toBe(true);
    expect(readFileSync(join(ROOT, 'deploy/mosquitto/entrypoint.sh'), 'utf8')).toContain(
      `DYNSEC_FILE=\${DYNSEC_FILE:-${file}}`,
    );
    // The largest assignment the master may publish: a whole conversation, every
    // character escaped by JSON (\u0001 → 6 bytes), plus the envelope.
    expect(Number(/^max_packet_size (\d+)$/m.exec(conf)?.[1])).toBeGreaterThanOrEqual(
      MAX_CONVERSATION_CHARS * 6 + 65_536,
    );
    for (const bound of ['max_queued_messages', 'max_queued_bytes', 'max_inflight_messages']) {
      expect(conf, bound).toMatch(new RegExp(`^${bound} [1-9]\\d*$`, 'm'));
    }
    expect(conf).not.toMatch(/^(password_file|acl_file) /m);
    expect(secretSources(mosquitto).sort()).toEqual([
      'mqtt_master_password',
      'mqtt_observer_password',
    ]);
  });

  it('gives every worker service its own join token and no secret shared with other workers', () => {
    const tokens: Record<string, string> = {
      'worker-cpu': 'worker_join_cpu',
      'worker-gpu': 'worker_join_gpu',
      'worker-python': 'worker_join_python',
    };
    for (const [name, token] of Object.entries(tokens)) {
      const worker = stack.services[name]!;
      expect(worker.environment?.WORKER_JOIN_TOKEN_FILE, name).toBe(`/run/secrets/${token}`);
      // The CA certificate is public; nothing else a worker holds is shared.
      expect(secretSources(worker).sort(), name).toEqual(['tls_ca', token]);
      for (const key of [
        'MQTT_USERNAME',
        'MQTT_PASSWORD',
        'MQTT_PASSWORD_FILE',
        'WORKER_TOKEN_FILE',
      ]) {
        expect(worker.environment?.[key], `${name}: ${key}`).toBeUndefined();
      }
      expect(worker.environment?.GRPC_TLS, name).toBe('true');
      expect(worker.environment?.TLS_CA, name).toBe('/run/secrets/tls_ca');
    }
    const all = Object.keys(stack.secrets ?? {});
    expect(all).not.toContain('mqtt_worker_password');
    expect(all).not.toContain('worker_token');
    for (const [name, service] of Object.entries(stack.services)) {
      if (!(name in tokens)) {
        expect(
          secretSources(service).filter((s) => s.startsWith('worker_join_')),
          name,
        ).toEqual([]);
      }
    }
  });

  it('runs the master on the network with its signing secret, dynamic security, TLS and a volume', () => {
    const master = stack.services.master!;
    expect(master.environment).toMatchObject({
      HOST: '0.0.0.0',
      MQTT_USERNAME: '_master',
      MQTT_DYNSEC: 'true',
      FLOTA_SECRET_FILE: '/run/secrets/flota_secret',
      FLOTA_DATA_DIR: '/var/lib/flota',
      TLS_CERT: '/run/secrets/tls_cert',
      TLS_KEY: '/run/secrets/tls_key',
      API_TOKENS_FILE: '/run/secrets/api_tokens',
    });
    expect(master.volumes).toEqual([
      expect.objectContaining({ type: 'volume', source: 'master-data', target: '/var/lib/flota' }),
    ]);
    // The volume is local to a node: the master stays where it is.
    const deploy = master.deploy as { placement: { constraints: string[] } };
    expect(deploy.placement.constraints).toContain('node.labels.flota.data == true');
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/mkdir -p \/var\/lib\/flota && chown node:node \/var\/lib\/flota/);
    const autoscaler = stack.services.autoscaler!;
    expect(autoscaler.environment?.AUTOSCALE_MASTER_URL).toBe('https://master:8080');
    expect(autoscaler.environment?.NODE_EXTRA_CA_CERTS).toBe('/run/secrets/tls_ca');
  });

  it('puts every service on one attachable overlay network, encrypted between nodes', () => {
    expect(stack.networks?.flota).toMatchObject({
      driver: 'overlay',
      attachable: true,
      driver_opts: { encrypted: 'true' },
    });
    for (const [name, service] of Object.entries(stack.services)) {
      expect(Object.keys(service.networks as object), name).toEqual(['flota']);
    }
  });

  it('runs the autoscaler only when asked, once, on a manager, with the Docker socket', () => {
    const autoscaler = stack.services.autoscaler!;
    expect(autoscaler.image).toBe('reg.example:5000/flota/flota-master:1.2.3-abc');
    expect(autoscaler.command).toEqual(['autoscale']);
    expect(autoscaler.environment).toMatchObject({
      AUTOSCALE_DRIVER: 'swarm',
      AUTOSCALE_STACK: 'demo',
      DOCKER_SOCKET: '/var/run/docker.sock',
    });
    // Only this service runs as root: the socket is root's.
    expect(autoscaler.user).toBe('root');
    for (const [name, service] of Object.entries(stack.services)) {
      if (name !== 'autoscaler') expect(service.user, name).toBeUndefined();
    }
    expect(autoscaler.volumes).toEqual([
      { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' },
    ]);
    const deploy = autoscaler.deploy as { replicas: number; placement: { constraints: string[] } };
    expect(deploy.replicas).toBe(0);
    expect(deploy.placement.constraints).toEqual(['node.role == manager']);
    const on = stackConfig([], { AUTOSCALER_REPLICAS: '1' });
    expect(on.services.autoscaler?.deploy?.replicas).toBe(1);
  });

  it('checks the autoscaler health on its own port, passing on 200 only', async () => {
    const autoscaler = stack.services.autoscaler!;
    const test = (autoscaler.healthcheck?.test ?? []) as string[];
    expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    expect(autoscaler.environment?.AUTOSCALE_PORT).toBe('9465');
    expect(autoscaler.environment?.AUTOSCALE_HOST).toBe('0.0.0.0');
    let status = 200;
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const port = String((server.address() as AddressInfo).port);
    const check = () =>
      new Promise<number | null>((done) => {
        const child = spawn(process.execPath, test.slice(2), {
          env: { AUTOSCALE_PORT: port },
          stdio: 'ignore',
        });
        child.on('exit', (code) => done(code));
      });
    try {
      expect(await check()).toBe(0);
      status = 500;
      expect(await check()).toBe(1);
    } finally {
      await new Promise((done) => server.close(done));
    }
    expect(await check()).toBe(1);
  });
});
