/**
 * Autoscaler configuration: every variable, its default and its meaning
 * (docs/CONFIGURATION.md is generated from the schema), validated once.
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
import {
  configError,
  fraction,
  int,
  logLevel,
  optionalInt,
  parseEnv,
} from '../../common/env-schema.ts';
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

export const autoscalerConfigSchema = z.object({
  AUTOSCALE_DRIVER: z
    .enum(DRIVER_NAMES)
    .default('local')
    .describe(
      '`local` (worker processes on this machine) or `swarm` (a Docker Swarm service per pool). `flota up --autoscale` is always `local`',
    ),
  AUTOSCALE_POOLS: z.string().optional().meta({
    shownDefault:
      '`local:cpu` (`flota up`), `<hostname>:cpu` (`flota autoscale`, local), `worker-cpu:cpu` (swarm)',
    description:
      '`name:cpu|gpu[:min-max]`, comma-separated. Local workers are named `<pool>-<n>`, so machines sharing a master need pools of their own names (the default uses the host name); a Swarm pool is the service `<stack>_<name>`, and its workers are those whose id starts with `cpu-` or `gpu-` (as `stack.yml` names them)',
  }),
  AUTOSCALE_MIN: int(0, 1000, 1).describe(
    'Fewest replicas per pool (0 lets an idle pool go away), unless the pool names its own',
  ),
  AUTOSCALE_MAX: int(1, 1000, 4).describe('Most replicas per pool, unless the pool names its own'),
  AUTOSCALE_STEP_UP: int(1, 1000, 2).describe('Most replicas added by one decision'),
  AUTOSCALE_STEP_DOWN: int(1, 1000, 1).describe('Most replicas removed by one decision'),
  AUTOSCALE_COOLDOWN_UP_MS: int(0, 3_600_000, 10_000).describe('Least time between two scale-ups'),
  AUTOSCALE_COOLDOWN_DOWN_MS: int(0, 3_600_000, 60_000).describe(
    'How long load must stay low, and how long after any scaling, before a scale-down',
  ),
  AUTOSCALE_UP_AFTER_DOWN_MS: optionalInt(0, 3_600_000).meta({
    shownDefault: '`40000` (swarm), `0` (local)',
    description:
      "Least time from a scale-down to the next scale-up. Swarm hands a removed replica's slot, and so its worker id, to a new one while the removed one may still drain (up to its 35 s `stop_grace_period`)",
  }),
  AUTOSCALE_TARGET_UTILISATION: fraction(0, 1, 0.8).describe(
    "Share of a pool's slots that should be busy (above 0, at most 1); 0.8 leaves room for bursts",
  ),
  AUTOSCALE_SLOTS_PER_WORKER: int(1, 1024, 2).describe(
    "Slots assumed per worker while none of the pool is online (a worker's `SLOTS` default is 2)",
  ),
  AUTOSCALE_INTERVAL_MS: int(200, 600_000, 5_000).describe('How often it looks and decides'),
  AUTOSCALE_MASTER_URL: z
    .url({ protocol: /^https?$/ })
    .default('http://127.0.0.1:8080')
    .describe(
      "The master's REST API; it reads `/api/metrics` and `/api/workers` (`flota up` sets it)",
    ),
  AUTOSCALE_API_TOKEN: z
    .string()
    .optional()
    .describe("A token of the master's `API_TOKENS`, when it has any (`flota up` uses the first)"),
  AUTOSCALE_PORT: int(0, 65_535, 9465).describe(
    'Its `/metrics`, `/status` and `/healthz`; 0 picks a free port',
  ),
  AUTOSCALE_HOST: z.string().default('127.0.0.1').describe('Address for that port'),
  AUTOSCALE_STACK: z
    .string()
    .optional()
    .describe("Swarm: the stack's name, so pool `worker-cpu` scales service `<stack>_worker-cpu`"),
  DOCKER_SOCKET: z
    .string()
    .default('/var/run/docker.sock')
    .describe('Swarm: the Docker Engine socket of a manager node'),
  LOG_LEVEL: logLevel(),
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
  const { data, problems } = parseEnv(autoscalerConfigSchema, env, defaults);
  if (data === undefined) throw configError('autoscaler', problems);
  const { AUTOSCALE_POOLS: _, ...rest } = data;
  const pools = parsePools(data, problems, localPool);
  if (problems.length > 0) throw configError('autoscaler', problems);
  return { ...rest, pools };
}

/**
 * `npm start --autoscale` hands the flag to npm, which passes it on only as
 * the variable npm_config_autoscale — so `flota up` reads that as well.
 */
export function autoscaleFlagFromNpm(env: NodeJS.ProcessEnv): boolean {
  return env.npm_config_autoscale === 'true';
}
