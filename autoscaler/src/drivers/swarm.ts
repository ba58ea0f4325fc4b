/**
 * The `swarm` driver: a pool is a replicated service of a Docker Swarm stack
 * (`<stack>_<pool>`), sized through the Docker Engine API on a manager's
 * socket, the way `docker service scale` does it: read the service, send its
 * spec back with only the replica count changed, quoting the version read.
 * Swarm itself picks the tasks to stop on a scale-down and stops them with
 * SIGTERM, which makes a worker drain (finish its tasks, then exit) within
 * its stop_grace_period.
 */
import { Agent } from 'node:http';
import Docker from 'dockerode';
import { z } from 'zod';
import { ConflictError, FlotaError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { formatZodError } from '../../../common/zod-error.ts';
import type { PoolSpec } from '../config.ts';
import type { ScaleDriver } from './driver.ts';

export interface SwarmDriverOptions {
  /** The Docker Engine's unix socket, e.g. /var/run/docker.sock (DOCKER_SOCKET). */
  socketPath: string;
  /** The stack's name: a pool `worker-cpu` is then the service `<stack>_worker-cpu` (AUTOSCALE_STACK). */
  stack?: string;
  log: Logger;
  /** Longest wait for one Engine call. Default 10 000 ms. */
  timeoutMs?: number;
}

/** The service a pool names cannot be scaled as it is: the operator has to fix the setup. */
export class SwarmServiceError extends FlotaError {
  constructor(message: string) {
    super('swarm_service_unusable', message);
  }
}

/** The Docker Engine did not answer, or answered with an error. */
export class DockerEngineError extends FlotaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('docker_engine_failed', message, options);
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Updates tried when another client changes the service between our read and our write. */
const UPDATE_ATTEMPTS = 3;

/**
 * What the driver reads of GET /services/{id}. Loose objects: the spec goes
 * back to the Engine as it came, every field we do not know about included.
 */
const serviceSchema = z.looseObject({
  ID: z.string(),
  Version: z.looseObject({ Index: z.number().int().nonnegative() }),
  Spec: z.looseObject({
    Name: z.string(),
    Mode: z.looseObject({
      Replicated: z.looseObject({ Replicas: z.number().int().nonnegative() }).optional(),
    }),
  }),
});
type Service = z.infer<typeof serviceSchema>;

/** What docker-modem attaches to an error built from an Engine answer. */
interface EngineFailure {
  statusCode?: number;
  code?: string;
  json?: { message?: unknown };
}

const failureOf = (err: unknown): EngineFailure =>
  typeof err === 'object' && err !== null ? (err as EngineFailure) : {};

function engineMessage(err: unknown): string {
  const message = failureOf(err).json?.message;
  if (typeof message === 'string') return message;
  return err instanceof Error ? err.message : String(err);
}

/** How the Engine refuses an update quoting a version that is no longer current. */
const isOutOfSequence = (err: unknown) => /update out of sequence/i.test(engineMessage(err));

class SwarmDriver implements ScaleDriver {
  readonly name = 'swarm';
  private readonly docker: Docker;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private closed = false;

  constructor(private readonly options: SwarmDriverOptions) {
    this.log = options.log.child({ component: 'swarm-driver' });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // host/port/protocol set explicitly: otherwise docker-modem prefers a
    // DOCKER_HOST from the environment over the socket we were given. Our
    // own agent (missing from @types/dockerode) lets close() drop idle sockets.
    const dockerOptions: Docker.DockerOptions & { agent: Agent } = {
      socketPath: options.socketPath,
      host: undefined,
      port: undefined,
      protocol: 'http',
      agent: this.agent,
    };
    this.docker = new Docker(dockerOptions);
  }

  private serviceName(pool: PoolSpec): string {
    return this.options.stack ? `${this.options.stack}_${pool.name}` : pool.name;
  }

  async replicas(pool: PoolSpec): Promise<number> {
    const service = await this.inspect(pool);
    return this.replicasOf(service);
  }

  /** `workers` goes unused: Swarm, not the driver, picks which tasks a scale-down stops. */
  async scale(pool: PoolSpec, replicas: number): Promise<void> {
    const name = this.serviceName(pool);
    for (let attempt = 1; ; attempt++) {
      const service = await this.inspect(pool);
      const from = this.replicasOf(service);
      if (from === replicas) return;
      const version = service.Version.Index;
      try {
        await this.update(name, version, withReplicas(service, replicas));
      } catch (err) {
        if (!isOutOfSequence(err)) throw this.failed(`update service ${name}`, err);
        if (attempt >= UPDATE_ATTEMPTS) {
          throw new ConflictError(
            `service ${name} changed under every one of ${UPDATE_ATTEMPTS} updates (update out of sequence); the next round tries again`,
          );
        }
        this.log.warn(
          { pool: pool.name, service: name, version, attempt },
          'service changed between read and update; reading it again',
        );
        continue;
      }
      this.log.info(
        { pool: pool.name, service: name, from, to: replicas, version },
        `scaled ${name} from ${from} to ${replicas}`,
      );
      return;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.agent.destroy();
  }

  private async inspect(pool: PoolSpec): Promise<Service> {
    const name = this.serviceName(pool);
    let raw: unknown;
    try {
      raw = await this.call((abortSignal) =>
        this.docker.getService(encodeURIComponent(name)).inspect({ abortSignal }),
      );
    } catch (err) {
      if (failureOf(err).statusCode === 404) throw this.missing(name);
      throw this.failed(`read service ${name}`, err);
    }
    const parsed = serviceSchema.safeParse(raw);
    if (!parsed.success) {
      throw new DockerEngineError(
        `the Docker Engine described service ${name} in an unexpected shape: ${formatZodError(parsed.error)}`,
      );
    }
    // The Engine also matches an ID prefix; only the service of that name is ours.
    if (parsed.data.Spec.Name !== name) throw this.missing(name);
    return parsed.data;
  }

  private replicasOf(service: Service): number {
    const replicated = service.Spec.Mode.Replicated;
    if (!replicated) throw this.notReplicated(service.Spec.Name, Object.keys(service.Spec.Mode));
    return replicated.Replicas;
  }

  private async update(name: string, version: number, spec: Service['Spec']): Promise<void> {
    await this.call((abortSignal) =>
      this.docker.getService(encodeURIComponent(name)).update({
        // docker-modem: _query becomes the query string, _body the JSON body.
        _query: { version },
        _body: spec,
        abortSignal,
      }),
    );
  }

  /** One Engine call, abandoned after timeoutMs. */
  private async call<T>(request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closed) throw new DockerEngineError('the swarm driver is closed');
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return await request(signal);
    } catch (err) {
      if (signal.aborted) {
        throw new DockerEngineError(
          `the Docker Engine at ${this.options.socketPath} did not answer within ${this.timeoutMs} ms`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  private missing(name: string): SwarmServiceError {
    const hint = this.options.stack
      ? `is the stack deployed, and is AUTOSCALE_STACK (${this.options.stack}) its name?`
      : 'is the stack deployed, and is AUTOSCALE_STACK set to its name?';
    return new SwarmServiceError(`no service ${name}: ${hint}`);
  }

  private notReplicated(name: string, modes: string[]): SwarmServiceError {
    const mode = modes.join(', ') || 'no';
    return new SwarmServiceError(
      `service ${name} runs in ${mode} mode: only a replicated service can be scaled; set deploy.mode: replicated, or take the pool out of AUTOSCALE_POOLS`,
    );
  }

  private failed(what: string, err: unknown): FlotaError {
    if (err instanceof FlotaError) return err;
    const { code, statusCode } = failureOf(err);
    const socket = this.options.socketPath;
    if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') {
      return new DockerEngineError(
        `cannot reach the Docker Engine at ${socket} (${code}): mount the socket into the autoscaler, run it as a user that may open it, on a manager node`,
        { cause: err },
      );
    }
    if (statusCode === 503) {
      return new DockerEngineError(
        `the Docker Engine at ${socket} is not a swarm manager (${engineMessage(err)}): run the autoscaler on a manager node`,
        { cause: err },
      );
    }
    const status = statusCode === undefined ? '' : ` (HTTP ${statusCode})`;
    return new DockerEngineError(`cannot ${what}${status}: ${engineMessage(err)}`, { cause: err });
  }
}

/** The same spec with only the replica count changed. */
function withReplicas(service: Service, replicas: number): Service['Spec'] {
  const { Spec: spec } = service;
  return {
    ...spec,
    Mode: { ...spec.Mode, Replicated: { ...spec.Mode.Replicated, Replicas: replicas } },
  };
}

export function createSwarmDriver(options: SwarmDriverOptions): ScaleDriver {
  return new SwarmDriver(options);
}
