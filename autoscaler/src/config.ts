/**
 * Autoscaler configuration: every env var, its default, validated once.
 * `loadAutoscalerConfig` throws a ConfigError listing every problem.
 *
 * Pools are named in AUTOSCALE_POOLS as `name:class[:min-max]`, e.g.
 * `worker-cpu:cpu:1-8,worker-gpu:gpu:0-2`. The other knobs apply to every
 * pool. Which workers belong to a pool is known by their id: the local driver
 * names its workers `<pool>-<n>`, and stack.yml names Swarm's `cpu-<slot>` and
 * `gpu-<slot>`, so a Swarm pool's workers are those whose id starts with its
 * class.
 */
import { z } from 'zod';
import { ConfigError } from '../../common/errors.ts';
import { type WorkerKind, workerKindSchema } from '../../proto/src/schemas/worker.ts';
import { type PoolPolicy, policyProblems } from './decide.ts';

export const DRIVER_NAMES = ['local', 'swarm'] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

/** One pool of interchangeable workers the autoscaler sizes. */
export interface PoolSpec {
  /** The local driver's id prefix; for Swarm, the service name within the stack. */
  name: string;
  capability: WorkerKind;
  /** Workers whose id starts with this belong to the pool. */
  workerPrefix: string;
  policy: PoolPolicy;
}

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);
const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

export const autoscalerConfigSchema = z.object({
  /** `local` starts and stops worker processes here; `swarm` scales a stack's worker services. */
  AUTOSCALE_DRIVER: z.enum(DRIVER_NAMES).default('local'),
  /** Where the master's REST API answers (it reads /api/metrics and /api/workers). */
  AUTOSCALE_MASTER_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8080'),
  /** A token of API_TOKENS, when the master requires one. */
  AUTOSCALE_API_TOKEN: optionalText,
  /** `name:class[:min-max]`, comma-separated. Default: one pool, `local:cpu` or `worker-cpu:cpu`. */
  AUTOSCALE_POOLS: optionalText,
  AUTOSCALE_MIN: int(0, 1000, 1),
  AUTOSCALE_MAX: int(1, 1000, 4),
  AUTOSCALE_STEP_UP: int(1, 1000, 2),
  AUTOSCALE_STEP_DOWN: int(1, 1000, 1),
  AUTOSCALE_COOLDOWN_UP_MS: int(0, 3_600_000, 10_000),
  AUTOSCALE_COOLDOWN_DOWN_MS: int(0, 3_600_000, 60_000),
  /**
   * Least time from a scale-down to the next scale-up. Default: 40 s for
   * Swarm (a removed worker drains for up to its 35 s stop_grace_period while
   * Swarm may hand its slot, and id, to a new one), 0 for local workers.
   */
  AUTOSCALE_UP_AFTER_DOWN_MS: z.coerce.number().int().min(0).max(3_600_000).optional(),
  /** Share of a pool's slots that should be busy; 0.8 leaves room for bursts. */
  AUTOSCALE_TARGET_UTILISATION: z.coerce.number().gt(0).max(1).default(0.8),
  /** Slots per worker while none of a pool is online (a worker's SLOTS default is 2). */
  AUTOSCALE_SLOTS_PER_WORKER: int(1, 1024, 2),
  /** How often to look and decide. */
  AUTOSCALE_INTERVAL_MS: int(200, 600_000, 5_000),
  /** /metrics, /healthz and /status of the autoscaler; 0 picks a free port. */
  AUTOSCALE_PORT: int(0, 65_535, 9465),
  AUTOSCALE_HOST: z.string().trim().min(1).default('127.0.0.1'),
  /** Swarm: the Docker Engine socket (the autoscaler must run on a manager node). */
  DOCKER_SOCKET: z.string().trim().min(1).default('/var/run/docker.sock'),
  /** Swarm: the stack's name; a pool `worker-cpu` scales the service `<stack>_worker-cpu`. */
  AUTOSCALE_STACK: optionalText,
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

type Env = z.infer<typeof autoscalerConfigSchema>;
export type AutoscalerConfig = Omit<Env, 'AUTOSCALE_POOLS'> & { pools: PoolSpec[] };

const POOL_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/** `flota up --autoscale`'s pool; `flota autoscale` names its local pool after the host (see hostPoolName). */
export const LOCAL_POOL = 'local';
/** Longer than a Swarm worker's stop_grace_period (35 s in stack.yml); local ids are never reused while a worker drains. */
const UP_AFTER_DOWN_MS: Record<DriverName, number> = { local: 0, swarm: 40_000 };

/**
 * A pool name from a host name (`GPU-Box.lan` → `gpu-box.lan`), so machines
 * that each run `flota autoscale` for one master never start workers of the
 * same id.
 */
export function hostPoolName(hostname: string): string {
  const name = hostname
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
  return name || LOCAL_POOL;
}

function parsePools(env: Env, problems: string[], localPool: string): PoolSpec[] {
  const defaults: Record<DriverName, string> = {
    local: `${localPool}:cpu`,
    swarm: 'worker-cpu:cpu',
  };
  const text = env.AUTOSCALE_POOLS ?? defaults[env.AUTOSCALE_DRIVER];
  const pools: PoolSpec[] = [];
  for (const [i, entry] of text.split(',').entries()) {
    const where = `AUTOSCALE_POOLS entry ${i + 1} (${entry.trim()})`;
    const [name = '', kind = '', bounds, ...rest] = entry.trim().split(':');
    const capability = workerKindSchema.safeParse(kind);
    const range = bounds === undefined ? undefined : /^(\d+)-(\d+)$/.exec(bounds);
    if (!POOL_NAME.test(name) || !capability.success || rest.length > 0 || range === null) {
      problems.push(`${where}: must be name:cpu|gpu[:min-max], e.g. worker-cpu:cpu:1-8`);
      continue;
    }
    if (pools.some((p) => p.name === name)) problems.push(`${where}: pool ${name} is named twice`);
    const policy: PoolPolicy = {
      min: range ? Number(range[1]) : env.AUTOSCALE_MIN,
      max: range ? Number(range[2]) : env.AUTOSCALE_MAX,
      stepUp: env.AUTOSCALE_STEP_UP,
      stepDown: env.AUTOSCALE_STEP_DOWN,
      cooldownUpMs: env.AUTOSCALE_COOLDOWN_UP_MS,
      cooldownDownMs: env.AUTOSCALE_COOLDOWN_DOWN_MS,
      upAfterDownMs: env.AUTOSCALE_UP_AFTER_DOWN_MS ?? UP_AFTER_DOWN_MS[env.AUTOSCALE_DRIVER],
      targetUtilisation: env.AUTOSCALE_TARGET_UTILISATION,
      slotsPerWorker: env.AUTOSCALE_SLOTS_PER_WORKER,
    };
    for (const problem of policyProblems(policy)) problems.push(`${where}: ${problem}`);
    const workerPrefix = env.AUTOSCALE_DRIVER === 'swarm' ? `${capability.data}-` : `${name}-`;
    pools.push({ name, capability: capability.data, workerPrefix, policy });
  }
  const prefixes = pools.map((p) => p.workerPrefix);
  if (new Set(prefixes).size < prefixes.length) {
    problems.push('AUTOSCALE_POOLS: two Swarm pools of one class cannot be told apart');
  }
  return pools;
}

/**
 * `defaults` fill variables the environment leaves unset; `localPool` names
 * the local driver's pool when AUTOSCALE_POOLS is unset.
 */
export function loadAutoscalerConfig(
  env: NodeJS.ProcessEnv = process.env,
  defaults: Partial<Record<keyof Env, string>> = {},
  localPool = LOCAL_POOL,
): AutoscalerConfig {
  const merged = { ...defaults, ...definedOnly(env, Object.keys(autoscalerConfigSchema.shape)) };
  const parsed = autoscalerConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid autoscaler configuration:\n${problems.join('\n')}`);
  }
  const problems: string[] = [];
  const { AUTOSCALE_POOLS: _, ...rest } = parsed.data;
  const pools = parsePools(parsed.data, problems, localPool);
  if (problems.length > 0) {
    throw new ConfigError(
      `invalid autoscaler configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
  return { ...rest, pools };
}

/** The variables this config reads that are set, so `defaults` fill only the rest. */
function definedOnly(env: NodeJS.ProcessEnv, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/**
 * `npm start --autoscale` hands the flag to npm, which passes it on only as
 * the variable npm_config_autoscale — so `flota up` reads that as well.
 */
export function autoscaleFlagFromNpm(env: NodeJS.ProcessEnv): boolean {
  return env.npm_config_autoscale === 'true';
}
