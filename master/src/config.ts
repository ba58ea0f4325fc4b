/**
 * Master configuration: every public env var, its default, validated once.
 * `loadMasterConfig` throws a ConfigError listing every problem, so a user
 * fixes them all in one go.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../common/errors.ts';
import { MAX_TASK_TIMEOUT_MS, MIN_TASK_TIMEOUT_MS } from '../../proto/src/schemas/task.ts';
import { DEFAULT_TOPIC_PREFIX } from '../../proto/src/topics.ts';

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);
const optionalUrl = (protocols: string[], name: string) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v) => (v === '' ? undefined : v))
    .refine((v) => v === undefined || protocols.some((p) => v.startsWith(p)), {
      message: `${name} must start with ${protocols.join(' or ')}`,
    });

/** DISPATCH_POLICY values; each is built by master/src/dispatch/policies/index.ts. */
export const POLICY_NAMES = [
  'round-robin',
  'least-connections',
  'least-loaded',
  'weighted-round-robin',
  'latency-aware',
] as const;

/** One API token and the tenant it stands for. */
export interface TenantToken {
  tenant: string;
  token: string;
}

const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Shortest API token accepted: long enough not to be guessed. */
export const MIN_API_TOKEN_CHARS = 16;

/**
 * `tenant:token` entries separated by commas or new lines (a file may use
 * either). Messages name the entry by position, never its token.
 */
function parseTenantTokens(text: string, ctx: z.RefinementCtx): TenantToken[] {
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '' && !e.startsWith('#'));
  const tokens: TenantToken[] = [];
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const tenant = colon > 0 ? entry.slice(0, colon).trim() : '';
    const token = colon > 0 ? entry.slice(colon + 1).trim() : '';
    const where = `entry ${i + 1}`;
    if (!TENANT_NAME.test(tenant)) {
      ctx.addIssue({
        code: 'custom',
        message: `${where} must be tenant:token, the tenant 1-64 of A-Z a-z 0-9 _ . - (starting with a letter or digit)`,
      });
    } else if (token.length < MIN_API_TOKEN_CHARS || /\s/.test(token)) {
      ctx.addIssue({
        code: 'custom',
        message: `${where} (tenant ${tenant}): the token must be at least ${MIN_API_TOKEN_CHARS} characters without spaces`,
      });
    } else tokens.push({ tenant, token });
  });
  return tokens;
}

const tenantTokens = z
  .string()
  .optional()
  .transform((text, ctx) => (text?.trim() ? parseTenantTokens(text, ctx) : []));

const tenantTokensFile = z
  .string()
  .optional()
  .transform((path, ctx) => {
    if (!path?.trim()) return [];
    let text: string;
    try {
      text = readFileSync(path.trim(), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      ctx.addIssue({ code: 'custom', message: `cannot read ${path.trim()} (${code})` });
      return [];
    }
    return parseTenantTokens(text, ctx);
  });

export const masterConfigSchema = z.object({
  /** HTTP + Socket.IO port. */
  PORT: port(8080),
  /** Address the HTTP, gRPC and embedded MQTT servers bind to. */
  HOST: z.string().default('0.0.0.0'),
  GRPC_PORT: port(50051),
  /** Port of the embedded MQTT broker (ignored when MQTT_URL is set). */
  MQTT_PORT: port(1883),
  /** External broker, e.g. mqtt://mosquitto:1883; unset → embedded aedes broker. */
  MQTT_URL: optionalUrl(['mqtt://', 'mqtts://', 'ws://', 'wss://'], 'MQTT_URL'),
  MQTT_USERNAME: z.string().optional(),
  MQTT_PASSWORD: z.string().optional(),
  MQTT_PREFIX: z.string().min(1).default(DEFAULT_TOPIC_PREFIX),
  /** redis://… or postgres://…; unset → embedded PostgreSQL under FLOTA_DATA_DIR. */
  QUEUE_URL: optionalUrl(['redis://', 'rediss://', 'postgres://', 'postgresql://'], 'QUEUE_URL'),
  /** Namespace inside the store (Redis key prefix / Postgres schema). */
  QUEUE_NAMESPACE: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,40}$/, 'QUEUE_NAMESPACE: lower-case letters, digits, _')
    .default('flota'),
  FLOTA_DATA_DIR: z.string().min(1).default('./.flota'),
  /** Local workers `flota up` (npm start) runs beside the master. */
  WORKERS: z.coerce.number().int().min(0).max(64).default(2),
  /** How a lane picks among capable workers with a free slot (see docs/ARCHITECTURE.md). */
  DISPATCH_POLICY: z.enum(POLICY_NAMES).default('least-connections'),
  /**
   * Default budget from submission to result (queue time included); a request's
   * `timeoutMs` overrides it. The worker enforces it on the running attempt, the
   * master's deadline sweeper everywhere.
   */
  TASK_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(MIN_TASK_TIMEOUT_MS)
    .max(MAX_TASK_TIMEOUT_MS)
    .default(120_000),
  /** Attempts per task before it fails (infrastructure errors only; provider errors fail at once). */
  TASK_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** When set, workers must send it as `authorization: Bearer <token>` on gRPC calls. */
  WORKER_TOKEN: z.string().min(8).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /**
   * How long a completed answer is reused for the same (tenant, model, prompt,
   * history, params). 0 (the default) turns the result cache off: models are
   * not deterministic, so reusing answers is a choice an operator makes.
   */
  CACHE_TTL_S: z.coerce
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600)
    .default(0),
  /**
   * `tenant:token,tenant:token`. When any token is set (here or in the file),
   * every /api request and Socket.IO connection must present one, and belongs
   * to its tenant. Unset: one tenant, "default", and no authentication.
   */
  API_TOKENS: tenantTokens,
  /** The same list read from a file (e.g. a Docker secret), one entry per line or comma-separated. */
  API_TOKENS_FILE: tenantTokensFile,
});

export type MasterConfig = z.infer<typeof masterConfigSchema>;

/** Every API token from API_TOKENS and API_TOKENS_FILE; empty = authentication off. */
export function apiTokensOf(config: Pick<MasterConfig, 'API_TOKENS' | 'API_TOKENS_FILE'>) {
  return [...config.API_TOKENS, ...config.API_TOKENS_FILE];
}

export function loadMasterConfig(env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const parsed = masterConfigSchema.safeParse(env);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(env)'}: ${i.message}`);
  if (parsed.success) {
    const seen = new Set<string>();
    for (const { tenant, token } of apiTokensOf(parsed.data)) {
      if (seen.has(token)) {
        problems.push(`  - API_TOKENS: a token of tenant ${tenant} is listed more than once`);
      }
      seen.add(token);
    }
    if (problems.length === 0) return parsed.data;
  }
  throw new ConfigError(`invalid master configuration:\n${problems.join('\n')}`);
}
