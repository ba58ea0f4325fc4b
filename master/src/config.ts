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

/** What a token may do: `user` acts within its own tenant; `admin` sees every tenant and controls the fleet. */
export const API_ROLES = ['user', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** One API token, the tenant it stands for and its role. */
export interface TenantToken {
  tenant: string;
  token: string;
  role: ApiRole;
}

const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Shortest API token accepted: long enough not to be guessed. */
export const MIN_API_TOKEN_CHARS = 16;

/**
 * `tenant:token` or `tenant:token:role` entries (role `user`, the default, or
 * `admin`) separated by commas or new lines (a file may use either). Messages
 * name the entry by position, never its token.
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
    let token = colon > 0 ? entry.slice(colon + 1).trim() : '';
    let role: ApiRole = 'user';
    const roleMatch = /:(user|admin)$/.exec(token);
    if (roleMatch) {
      role = roleMatch[1] as ApiRole;
      token = token.slice(0, -roleMatch[0].length);
    }
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
    } else tokens.push({ tenant, token, role });
  });
  return tokens;
}

const tenantTokens = z
  .string()
  .optional()
  .transform((text, ctx) => (text?.trim() ? parseTenantTokens(text, ctx) : []));

/** The text of a file named by an env var, or an issue saying why it cannot be read. */
function readNamedFile(path: string, ctx: z.RefinementCtx): string | undefined {
  try {
    return readFileSync(path.trim(), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    ctx.addIssue({ code: 'custom', message: `cannot read ${path.trim()} (${code})` });
    return undefined;
  }
}

const tenantTokensFile = z
  .string()
  .optional()
  .transform((path, ctx) => {
    if (!path?.trim()) return [];
    const text = readNamedFile(path, ctx);
    return text === undefined ? [] : parseTenantTokens(text, ctx);
  });

/** A file path whose contents are read at start (a PEM certificate or key). */
const pemFile = z
  .string()
  .optional()
  .transform((path, ctx) => {
    if (!path?.trim()) return undefined;
    const text = readNamedFile(path, ctx);
    if (text !== undefined && !text.includes('-----BEGIN ')) {
      ctx.addIssue({ code: 'custom', message: `${path.trim()} is not a PEM file` });
      return undefined;
    }
    return text === undefined ? undefined : { path: path.trim(), pem: text };
  });

/** `FOO_FILE` wins over `FOO` for secrets (Docker secrets); both empty → undefined. */
const secretText = (min: number, name: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined))
    .refine((v) => v === undefined || v.length >= min, {
      message: `${name} must be at least ${min} characters`,
    });

const secretFile = z
  .string()
  .optional()
  .transform((path, ctx) => {
    if (!path?.trim()) return undefined;
    return readNamedFile(path, ctx)?.trim();
  });

const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''])
    .optional()
    .transform((v) =>
      v === undefined || v === '' ? fallback : ['true', '1', 'yes', 'on'].includes(v),
    );

const commaList = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  );

export const masterConfigSchema = z.object({
  /** HTTP + Socket.IO port. */
  PORT: port(8080),
  /**
   * Address the HTTP, gRPC and embedded MQTT servers bind to. Loopback by
   * default; any other address (e.g. 0.0.0.0) never runs open: without
   * API_TOKENS an admin token is generated in FLOTA_DATA_DIR and printed once.
   */
  HOST: z.string().trim().min(1).default('127.0.0.1'),
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
  /**
   * Signs worker credentials and join tokens (`flota token`). Unset → a
   * secret generated in FLOTA_DATA_DIR on first start. Several masters of one
   * installation must share it.
   */
  FLOTA_SECRET: secretText(32, 'FLOTA_SECRET'),
  /** The same read from a file (a Docker secret); wins over FLOTA_SECRET. */
  FLOTA_SECRET_FILE: secretFile,
  /**
   * PEM certificate chain and key: HTTPS (and wss for Socket.IO), TLS on gRPC,
   * mqtts on the embedded broker. Both or neither.
   */
  TLS_CERT: pemFile,
  TLS_KEY: pemFile,
  /** PEM CA bundle for client certificates (with TLS_CLIENT_AUTH) and for the master's own MQTT client. */
  TLS_CA: pemFile,
  /** Workers must present a certificate signed by TLS_CA on gRPC and mqtts (mutual TLS). */
  TLS_CLIENT_AUTH: flag(false),
  /**
   * Browser origins besides the master's own that may call the REST API and
   * open Socket.IO, e.g. `https://app.example.com`. Empty → same origin only.
   */
  CORS_ORIGINS: commaList,
  /** Requests per minute per tenant (per client address without tokens); 0 turns limits off. */
  RATE_LIMIT_RPM: z.coerce.number().int().min(0).max(1_000_000).default(600),
  /** Tasks one tenant may have queued or running at once; further submissions get 429. */
  MAX_QUEUED_PER_TENANT: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  /** Largest MQTT packet a client may send the embedded broker. */
  MQTT_MAX_PACKET_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(64 * 1_048_576)
    .default(262_144),
  /** Retained messages the embedded broker keeps at most (one status per worker). */
  MQTT_MAX_RETAINED: z.coerce.number().int().min(16).max(1_000_000).default(10_000),
  /**
   * With MQTT_URL on a Mosquitto that loads the dynamic-security plugin:
   * the master (MQTT_USERNAME must be a dynsec admin) creates a client per
   * worker credential it issues and disables it on revoke.
   */
  MQTT_DYNSEC: flag(false),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /**
   * What `flota up` prints (every process logs JSON; this is how the
   * supervisor shows it): `auto` human lines and a live status line when its
   * stdout is a terminal, JSON lines otherwise; `json` always JSON lines;
   * `pretty` human lines even when not a terminal (no status line there).
   */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
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

/** The secret that signs worker credentials, when configured (FLOTA_SECRET_FILE wins). */
export function configuredSecret(
  config: Pick<MasterConfig, 'FLOTA_SECRET' | 'FLOTA_SECRET_FILE'>,
): string | undefined {
  return config.FLOTA_SECRET_FILE ?? config.FLOTA_SECRET;
}

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Every API token from API_TOKENS and API_TOKENS_FILE; empty = authentication off. */
export function apiTokensOf(config: Pick<MasterConfig, 'API_TOKENS' | 'API_TOKENS_FILE'>) {
  return [...config.API_TOKENS, ...config.API_TOKENS_FILE];
}

/** Variables whose value a problem report never repeats. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD/;

/** One line per problem, naming the variable and (unless secret) the value it had. */
function describeIssue(issue: z.core.$ZodIssue, env: NodeJS.ProcessEnv): string {
  const name = issue.path.join('.') || '(env)';
  const raw = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
  const shown = raw !== undefined && !SECRET_NAME.test(name) ? JSON.stringify(raw) : undefined;
  // zod says "expected number, received NaN" of a value it coerced; the person typed something else.
  if (issue.code === 'invalid_type' && issue.expected === 'number') {
    return `  - ${name}: expected a number${shown ? `, got ${shown}` : ''}`;
  }
  return `  - ${name}: ${issue.message}${shown ? ` (got ${shown})` : ''}`;
}

export function loadMasterConfig(env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const parsed = masterConfigSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => describeIssue(i, env));
  if (parsed.success) {
    const seen = new Set<string>();
    for (const { tenant, token } of apiTokensOf(parsed.data)) {
      if (seen.has(token)) {
        problems.push(`  - API_TOKENS: a token of tenant ${tenant} is listed more than once`);
      }
      seen.add(token);
    }
    const c = parsed.data;
    if ((c.TLS_CERT === undefined) !== (c.TLS_KEY === undefined)) {
      problems.push('  - TLS_CERT, TLS_KEY: set both (PEM files) or neither');
    }
    if (c.TLS_CLIENT_AUTH && (c.TLS_CERT === undefined || c.TLS_CA === undefined)) {
      problems.push(
        '  - TLS_CLIENT_AUTH: needs TLS_CERT, TLS_KEY and TLS_CA (the CA that signs worker certificates)',
      );
    }
    if (c.FLOTA_SECRET_FILE !== undefined && c.FLOTA_SECRET_FILE.length < 32) {
      problems.push('  - FLOTA_SECRET_FILE: the secret must be at least 32 characters');
    }
    if (c.MQTT_DYNSEC && !c.MQTT_URL) {
      problems.push(
        '  - MQTT_DYNSEC: only with MQTT_URL (a Mosquitto with the dynamic-security plugin)',
      );
    }
    if (problems.length === 0) return parsed.data;
  }
  throw new ConfigError(`invalid master configuration:\n${problems.join('\n')}`);
}
