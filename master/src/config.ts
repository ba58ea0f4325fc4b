/**
 * Master configuration: every variable the master reads, its default and its
 * meaning (docs/CONFIGURATION.md is generated from this schema), validated
 * once. `loadMasterConfig` throws a ConfigError listing every problem, so a
 * user fixes them all in one go. The conventions are common/env-schema.ts's.
 */
import { z } from 'zod';
import {
  commaList,
  configError,
  flag,
  int,
  logLevel,
  parseEnv,
  pemFile,
  port,
  readNamedFile,
  secretFile,
} from '../../common/env-schema.ts';
import { MAX_TASK_TIMEOUT_MS, MIN_TASK_TIMEOUT_MS } from '../../proto/src/schemas/task.ts';
import { DEFAULT_TOPIC_PREFIX } from '../../proto/src/topics.ts';
import { NAMESPACE_PATTERN, NAMESPACE_RULE } from './store/url.ts';

const url = (protocols: string[]) =>
  z
    .string()
    .refine((v) => protocols.some((p) => v.startsWith(p)), {
      message: `must start with ${protocols.join(' or ')}`,
    })
    .optional();

/** An http(s) URL, checked as a whole (a typo such as `http:/host` is refused at start). */
const httpUrl = z
  .string()
  .refine(
    (v) => {
      if (!/^https?:\/\/[^/]/i.test(v)) return false;
      try {
        return new URL(v).hostname !== '';
      } catch {
        return false;
      }
    },
    { message: 'must be an http:// or https:// URL' },
  )
  .optional();

/** A decimal number from 0 to 1. */
const ratio = (fallback: number) =>
  z
    .string()
    .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'expected a number from 0 to 1')
    .transform(Number)
    .default(fallback);

/** DISPATCH_POLICY values; each is built by master/src/dispatch/policies/index.ts. */
export const POLICY_NAMES = [
  'round-robin',
  'least-connections',
  'least-loaded',
  'weighted-round-robin',
  'latency-aware',
] as const;

/** What each DISPATCH_POLICY picks, for the docs (`active`: tasks assigned and not yet seen finish). */
export const POLICY_SUMMARIES: Record<(typeof POLICY_NAMES)[number], string> = {
  'least-connections': 'the lowest `active / slots`',
  'round-robin': 'workers in id order, after the one picked last',
  'least-loaded':
    'the lowest `active / slots` + machine pressure (mean of CPU %, memory % and, on GPU workers, the busiest GPU %, from the last heartbeat)',
  'weighted-round-robin':
    'each worker in proportion to its `WEIGHT` (smooth weighted round-robin: weights 3 and 1 give `a a b a`, repeated)',
  'latency-aware':
    'the lowest `(average processing time + 1 ms) × (active + 1) / slots`, per model; unmeasured workers are tried first',
};

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

const tenantTokens = z.string().transform(parseTenantTokens).default([]);

const tenantTokensFile = z
  .string()
  .transform((path, ctx) => {
    const text = readNamedFile(path, ctx);
    return text === undefined ? [] : parseTenantTokens(text, ctx);
  })
  .default([]);

export const masterConfigSchema = z.object({
  PORT: port(8080).describe('HTTP port: chat UI, REST API, Socket.IO (`0` = any free port)'),
  HOST: z
    .string()
    .default('127.0.0.1')
    .describe(
      'Address the HTTP, gRPC and embedded MQTT servers bind to. Any other address (e.g. `0.0.0.0`) never runs open: without `API_TOKENS` an admin token is generated in `FLOTA_DATA_DIR` and printed once; see [SECURITY.md](SECURITY.md#listening)',
    ),
  GRPC_PORT: port(50051).describe('gRPC port workers send results to'),
  MQTT_PORT: port(1883).describe(
    'Port of the embedded MQTT broker; ignored when `MQTT_URL` is set',
  ),
  MQTT_URL: url(['mqtt://', 'mqtts://', 'ws://', 'wss://']).describe(
    'External broker (`mqtt://`, `mqtts://`, `ws://`, `wss://`); unset = embedded aedes broker',
  ),
  MQTT_USERNAME: z.string().optional().describe('Username the master uses on the broker'),
  MQTT_PASSWORD: z.string().optional().describe('Password the master uses on the broker'),
  MQTT_PREFIX: z.string().default(DEFAULT_TOPIC_PREFIX).describe('Prefix of every MQTT topic'),
  QUEUE_URL: url(['redis://', 'rediss://', 'postgres://', 'postgresql://']).describe(
    '`redis://`, `rediss://`, `postgres://` or `postgresql://`; unset = embedded PostgreSQL under `FLOTA_DATA_DIR`',
  ),
  QUEUE_NAMESPACE: z
    .string()
    .regex(NAMESPACE_PATTERN, NAMESPACE_RULE)
    .default('flota')
    .describe(`Redis key prefix or PostgreSQL schema (${NAMESPACE_RULE})`),
  FLOTA_DATA_DIR: z
    .string()
    .default('./.flota')
    .describe(
      'Embedded PostgreSQL data (`pg/`) and its generated password (`pg-password`); the generated `secret`, `api-tokens` and `revoked-workers.json`',
    ),
  WORKERS: int(0, 64, 2).describe(
    'Local workers `flota up` starts (0–64); ignored by `flota master`',
  ),
  DISPATCH_POLICY: z
    .enum(POLICY_NAMES)
    .default('least-connections')
    .describe(
      'How a lane picks among capable workers with a free slot; see [scheduling policies](#scheduling-policies)',
    ),
  TASK_TIMEOUT_MS: int(MIN_TASK_TIMEOUT_MS, MAX_TASK_TIMEOUT_MS, 120_000).describe(
    `Default time budget of a task, from submission to result, queue time included (${MIN_TASK_TIMEOUT_MS}–${MAX_TASK_TIMEOUT_MS}). A request's \`timeoutMs\` overrides it. The worker enforces it on the running attempt, the master's deadline sweeper everywhere`,
  ),
  TASK_ATTEMPTS: int(1, 20, 3).describe(
    'Attempts per task (1–20); only infrastructure failures use more than one (provider errors fail at once). Also how many times a task may stall (its master lost) before it fails',
  ),
  API_TOKENS: tenantTokens.describe(
    '`tenant:token[:admin],…`. When any token is set (here or in the file), every `/api` request and Socket.IO connection needs one, and belongs to its tenant. Unset: one tenant, `default`, and no authentication; see [SECURITY.md](SECURITY.md#api-access)',
  ),
  API_TOKENS_FILE: tenantTokensFile.describe(
    'The same entries read from a file (e.g. a Docker secret), one per line or comma-separated; merged with `API_TOKENS`',
  ),
  FLOTA_SECRET: z.string().min(32, 'must be at least 32 characters').optional().meta({
    shownDefault: 'generated',
    description:
      'Signs worker credentials and join tokens (`flota token`; at least 32 characters). Unset: made on first start in `FLOTA_DATA_DIR/secret`. Several masters of one installation must share it',
  }),
  FLOTA_SECRET_FILE: secretFile.describe(
    'The same read from a file (a Docker secret); wins over `FLOTA_SECRET`',
  ),
  TLS_CERT: pemFile.describe(
    'PEM certificate chain: HTTPS (and wss for Socket.IO), TLS on gRPC, mqtts (and MQTT over wss at `/mqtt`) on the embedded broker. Set with `TLS_KEY` or not at all',
  ),
  TLS_KEY: pemFile.describe('PEM key of `TLS_CERT`'),
  TLS_CA: pemFile.describe(
    "PEM CA bundle: signs client certificates (`TLS_CLIENT_AUTH`), trusted by the master's own MQTT client",
  ),
  TLS_CLIENT_AUTH: flag(false).describe(
    'Workers must present a certificate signed by `TLS_CA` on gRPC and mqtts (mutual TLS)',
  ),
  CORS_ORIGINS: commaList
    .default([])
    .describe(
      "Browser origins besides the master's own allowed on the REST API and Socket.IO, comma-separated (e.g. `https://app.example.com`); unset = same origin only",
    ),
  RATE_LIMIT_RPM: int(0, 1_000_000, 600).describe(
    'Requests per minute per tenant (per client address without tokens), counted in the queue store; `0` = off',
  ),
  MAX_QUEUED_PER_TENANT: int(1, 10_000_000, 10_000).describe(
    'Queued and running tasks one tenant may have; more get 429 `queue_full`',
  ),
  MQTT_MAX_PACKET_BYTES: int(1_024, 64 * 1_048_576, 262_144).describe(
    'Largest packet a client may send the embedded broker',
  ),
  MQTT_MAX_RETAINED: int(16, 1_000_000, 20_000).describe(
    'Retained messages the embedded broker keeps at most (one status per worker)',
  ),
  MQTT_DYNSEC: flag(false).describe(
    'With `MQTT_URL` on a Mosquitto with the dynamic-security plugin: the master (`MQTT_USERNAME` must be a dynsec admin) makes a broker login per worker credential it issues and disables it on revoke (see [SECURITY.md](SECURITY.md#mosquitto))',
  ),
  LOG_LEVEL: logLevel(),
  LOG_FORMAT: z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe(
      'What `flota up` prints: `auto` human lines and a live status line on a terminal, JSON lines otherwise; `json` always JSON; `pretty` human lines anywhere. Processes always log JSON (and on the MQTT log topic)',
    ),
  CACHE_TTL_S: int(0, 30 * 24 * 3600, 0).describe(
    'Seconds a completed answer serves identical requests (tenant, model, prompt, history, params) of its tenant (0–2592000). `0` turns the result cache off: models are not deterministic, so reusing answers is a choice an operator makes',
  ),
  HISTORY_RETENTION_HOURS: int(1, 24 * 365, 168).describe(
    'Hours the task history (`GET /api/tasks`, timelines, `GET /api/usage`) keeps a task after its submission (1–8760); older records are deleted every 10 minutes',
  ),
  PROMETHEUS_URL: httpUrl.describe(
    "Prometheus that scrapes this master (e.g. `http://prometheus:9090`): `GET /api/series` reads what is older than the master's last hour from it; unset = the last hour only",
  ),
  FLEET_NAME: z
    .string()
    .max(128)
    .optional()
    .describe("Names this installation in alert webhooks; unset = the master's id"),
  ALERT_WORKER_DOWN_SECONDS: int(0, 86_400, 30).describe(
    'Alert `worker_down`: a worker that went offline (not a clean stop) and stayed away this long; `0` = off',
  ),
  ALERT_BACKLOG_TASKS: int(0, 10_000_000, 100).describe(
    'Alert `backlog`: more queued tasks than this (all queues together, or per queue with `ALERT_BACKLOG_PER_QUEUE`); `0` = off',
  ),
  ALERT_BACKLOG_SECONDS: int(0, 86_400, 60).describe(
    'Alert `backlog`: for this long (`0` = at once)',
  ),
  ALERT_BACKLOG_PER_QUEUE: flag(false).describe(
    'Alert `backlog` per queue (one alert per queue name) instead of on the total',
  ),
  ALERT_WINDOW_SECONDS: int(10, 3_600, 300).describe(
    'Alerts `error_rate` and `latency_p95` look at the tasks that finished over this window (10–3600)',
  ),
  ALERT_ERROR_RATE: ratio(0.2).describe(
    'Alert `error_rate`: failed ÷ finished (completed + failed; cancellations not counted) over the window above this (0–1); `0` = off',
  ),
  ALERT_MIN_TASKS: int(1, 1_000_000, 20).describe(
    'Alerts `error_rate` and `latency_p95`: only with at least this many tasks finished over the window',
  ),
  ALERT_P95_MS: int(0, 86_400_000, 30_000).describe(
    'Alert `latency_p95`: p95 of submission → result over the window above this many ms; `0` = off',
  ),
  ALERT_NO_WORKER_SECONDS: int(0, 86_400, 30).describe(
    'Alert `no_worker_for_model`: tasks queued this long for a model (or GPU, or labels) no online worker serves; `0` = off',
  ),
  ALERT_WEBHOOK_URL: httpUrl.describe(
    'Each alert that fires or resolves is POSTed here as JSON, signed with `ALERT_WEBHOOK_SECRET`; see [OPERATIONS.md](OPERATIONS.md#alerts)',
  ),
  ALERT_WEBHOOK_SECRET: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe(
      'Signs each webhook delivery (HMAC-SHA256; at least 16 characters); required with `ALERT_WEBHOOK_URL`',
    ),
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

export function loadMasterConfig(env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const { data: c, problems } = parseEnv(masterConfigSchema, env);
  if (c === undefined) throw configError('master', problems);
  const seen = new Set<string>();
  for (const { tenant, token } of apiTokensOf(c)) {
    if (seen.has(token))
      problems.push(`API_TOKENS: a token of tenant ${tenant} is listed more than once`);
    seen.add(token);
  }
  if ((c.TLS_CERT === undefined) !== (c.TLS_KEY === undefined)) {
    problems.push('TLS_CERT, TLS_KEY: set both (PEM files) or neither');
  }
  if (c.TLS_CLIENT_AUTH && (c.TLS_CERT === undefined || c.TLS_CA === undefined)) {
    problems.push(
      'TLS_CLIENT_AUTH: needs TLS_CERT, TLS_KEY and TLS_CA (the CA that signs worker certificates)',
    );
  }
  if (c.FLOTA_SECRET_FILE !== undefined && c.FLOTA_SECRET_FILE.length < 32) {
    problems.push('FLOTA_SECRET_FILE: the secret must be at least 32 characters');
  }
  if (c.ALERT_WEBHOOK_URL !== undefined && c.ALERT_WEBHOOK_SECRET === undefined) {
    problems.push(
      'ALERT_WEBHOOK_SECRET: required with ALERT_WEBHOOK_URL (at least 16 characters; receivers check each delivery with it)',
    );
  }
  if (c.MQTT_DYNSEC && !c.MQTT_URL) {
    problems.push('MQTT_DYNSEC: only with MQTT_URL (a Mosquitto with the dynamic-security plugin)');
  }
  if (problems.length > 0) throw configError('master', problems);
  return c;
}
