/**
 * The Docker CLI and the operator scripts, run against the test's own engine
 * (DOCKER_HOST is in the environment scripts/swarm-test.sh gives us).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { SwarmConfig } from './config.ts';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its exit code and output (never rejects). */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        env: options.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

export class Docker {
  constructor(private readonly config: SwarmConfig) {}

  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const { config } = this;
    return {
      ...process.env,
      DOCKER_HOST: config.DOCKER_HOST,
      REGISTRY: config.REGISTRY,
      TAG: config.TAG,
      STACK: config.STACK,
      HTTP_PORT: String(config.HTTP_PORT),
      SECRETS_DIR: config.SECRETS_DIR,
      DEPLOY_TIMEOUT: '240',
      ...extra,
    };
  }

  /** `docker …`; throws with its output unless it exits 0. */
  async cli(args: string[], timeoutMs = 120_000): Promise<string> {
    const ran = await run('docker', args, { env: this.env(), timeoutMs });
    if (ran.code !== 0) {
      throw new Error(
        `docker ${args.join(' ')} exited ${ran.code}: ${ran.stderr.trim() || ran.stdout.trim()}`,
      );
    }
    return ran.stdout;
  }

  /** `docker …`, whatever its exit code. */
  raw(args: string[], timeoutMs = 120_000): Promise<Ran> {
    return run('docker', args, { env: this.env(), timeoutMs });
  }

  /** One of the repository's scripts (scale.sh, verify.sh, …); throws unless it exits 0. */
  async script(name: string, args: string[], extra: Record<string, string> = {}): Promise<string> {
    const ran = await run(join(this.config.ROOT, name), args, {
      env: this.env(extra),
      cwd: this.config.ROOT,
      timeoutMs: 300_000,
    });
    if (ran.code !== 0) {
      throw new Error(`${name} ${args.join(' ')} exited ${ran.code}: ${ran.stderr.trim()}`);
    }
    return ran.stdout + ran.stderr;
  }

  /** A bash snippet (the docs' commands), with the test's environment. */
  bash(snippet: string, timeoutMs = 120_000): Promise<Ran> {
    return run('bash', ['-euo', 'pipefail', '-c', snippet], {
      env: this.env(),
      cwd: this.config.SWARM_WORK,
      timeoutMs,
    });
  }

  service(name: string) {
    return `${this.config.STACK}_${name}`;
  }

  async replicas(service: string): Promise<number> {
    const out = await this.cli([
      'service',
      'inspect',
      '--format',
      '{{.Spec.Mode.Replicated.Replicas}}',
      this.service(service),
    ]);
    return Number(out.trim());
  }

  /** Running containers of a service: id and task slot. */
  async containers(service: string): Promise<{ id: string; slot: number }[]> {
    const out = await this.cli([
      'ps',
      '--filter',
      `label=com.docker.swarm.service.name=${this.service(service)}`,
      '--format',
      '{{.ID}} {{.Label "com.docker.swarm.task.name"}}',
    ]);
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [id, task] = line.split(' ');
        return { id: id as string, slot: Number((task ?? '').split('.')[1]) };
      });
  }
}
