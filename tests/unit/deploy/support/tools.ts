/**
 * Runs the deployment tooling the deploy tests check the files with: the
 * Docker CLI (`docker stack config` needs no engine), Debian's docker-compose
 * (`config` needs no engine either), shellcheck, and PyYAML through the
 * python3 that docker-compose itself runs on, to read the normalised YAML.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  /** Added to a minimal environment (PATH, HOME), never to the caller's own. */
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs a command to completion with a clean environment. */
export function run(command: string, args: string[], opts: RunOptions = {}): RunResult {
  const result = spawnSync(command, args, {
    cwd: opts.cwd ?? ROOT,
    input: opts.input,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      ...opts.env,
    },
    timeout: 60_000,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Throws with the tool's own words unless it exited 0. */
export function runOk(command: string, args: string[], opts: RunOptions = {}): string {
  const result = run(command, args, opts);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  }
  return result.stdout;
}

/** PyYAML's safe_load, as JSON: the same library docker-compose parses with. */
export function parseYaml(text: string): unknown {
  const script = 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)';
  return JSON.parse(runOk('/usr/bin/python3', ['-c', script], { input: text }));
}

/** `docker stack config` of stack.yml plus overrides, parsed; throws if Docker rejects it. */
export function stackConfig(files: string[] = [], env: Record<string, string> = {}): Compose {
  const args = ['stack', 'config', '-c', 'stack.yml', ...files.flatMap((f) => ['-c', f])];
  return parseYaml(runOk('docker', args, { env })) as Compose;
}

/** `docker-compose config` of docker-compose.yml with the given profiles, parsed. */
export function composeConfig(profiles: string[] = []): { config: Compose; warnings: string } {
  const args = ['-f', 'docker-compose.yml', ...profiles.flatMap((p) => ['--profile', p]), 'config'];
  const result = run('docker-compose', args);
  if (result.status !== 0) {
    throw new Error(`docker-compose config exited ${result.status}:\n${result.stderr}`);
  }
  return { config: parseYaml(result.stdout) as Compose, warnings: result.stderr.trim() };
}

export interface ComposeService {
  image?: string;
  environment?: Record<string, string | null>;
  secrets?: Array<{ source: string; target?: string } | string>;
  command?: string[];
  deploy?: Record<string, unknown>;
  healthcheck?: Record<string, unknown>;
  logging?: { driver?: string; options?: Record<string, string> };
  [key: string]: unknown;
}

export interface Compose {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { external?: boolean; name?: string; file?: string }>;
  configs?: Record<string, { name?: string; file?: string }>;
  networks?: Record<string, Record<string, unknown> | null>;
  volumes?: Record<string, unknown>;
}

/** Secret names a service mounts, whichever syntax the normalised file uses. */
export function secretSources(service: ComposeService): string[] {
  return (service.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
}

export type FlotaRole = 'master' | 'worker' | 'autoscaler' | 'python-worker';

/**
 * The services that run a flota image, by role. The autoscaler runs the
 * master image with the command `autoscale`; the Python worker has an image
 * of its own (workers/python).
 */
export function flotaServices(config: Compose): Array<[string, FlotaRole, ComposeService]> {
  const out: Array<[string, FlotaRole, ComposeService]> = [];
  for (const [name, service] of Object.entries(config.services)) {
    const image = service.image ?? '';
    if (/flota-master:/.test(image)) {
      out.push([name, service.command?.[0] === 'autoscale' ? 'autoscaler' : 'master', service]);
    } else if (/flota-worker:/.test(image)) out.push([name, 'worker', service]);
    else if (/flota-worker-python:/.test(image)) out.push([name, 'python-worker', service]);
  }
  return out;
}

/** NAME for which the images' entrypoint (deploy/docker/entrypoint.sh) reads NAME_FILE. */
export const ENTRYPOINT_FILE_VARS: ReadonlySet<string> = (() => {
  const script = readFileSync(join(ROOT, 'deploy/docker/entrypoint.sh'), 'utf8');
  const line = /^FILE_VARS="([^"]*)"$/m.exec(script);
  if (!line?.[1]) throw new Error('no FILE_VARS line in deploy/docker/entrypoint.sh');
  return new Set(line[1].split(/\s+/));
})();

/**
 * The environment a flota container of `service` would run with: Swarm's
 * templates filled in (slot 1, node "node-a"), each NAME_FILE the entrypoint
 * handles replaced by NAME = that secret's contents from `secretsDir`, and
 * other /run/secrets paths (read by flota itself) pointed into `secretsDir`.
 */
export function serviceEnv(service: ComposeService, secretsDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, raw] of Object.entries(service.environment ?? {})) {
    const value = (raw ?? '')
      .replaceAll('{{.Task.Slot}}', '1')
      .replaceAll('{{.Node.Hostname}}', 'node-a')
      .replace(/^\/run\/secrets\//, `${secretsDir}/`);
    const base = key.endsWith('_FILE') ? key.slice(0, -'_FILE'.length) : '';
    if (ENTRYPOINT_FILE_VARS.has(base)) env[base] = readFileSync(value, 'utf8').trim();
    else env[key] = value;
  }
  return env;
}

/**
 * The Python worker's config loader (workers/python/flota_worker/config.py),
 * run with Debian's python3: `names` lists the variables it reads (recorded
 * from an empty environment); otherwise it loads `env` and returns what a
 * deployment needs to know, or the loader's error.
 */
export function pythonWorkerConfig(env: Record<string, string> | 'names'): unknown {
  const script = `
import dataclasses, json, sys
sys.path.insert(0, sys.argv[1])
from flota_worker.config import load_config
from flota_worker.errors import ConfigError
if sys.argv[2] == "names":
    seen = set()
    class Recorder(dict):
        def get(self, key, default=None):
            seen.add(key)
            return default
    try:
        load_config(Recorder())
    except ConfigError:
        pass
    print(json.dumps(sorted(seen)))
else:
    try:
        print(json.dumps(dataclasses.asdict(load_config(json.loads(sys.stdin.read())))))
    except ConfigError as error:
        print(json.dumps({"error": str(error)}))
`;
  const mode = env === 'names' ? 'names' : 'load';
  const input = env === 'names' ? '' : JSON.stringify(env);
  return JSON.parse(
    runOk('/usr/bin/python3', ['-c', script, join(ROOT, 'workers/python'), mode], {
      input,
      env: { PYTHONDONTWRITEBYTECODE: '1' },
    }),
  );
}
