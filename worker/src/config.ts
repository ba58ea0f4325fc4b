/**
 * Worker configuration: read from the environment once, validated once.
 * Every problem is reported at the same time, one line each, named by its
 * environment variable, so a misconfigured worker can be fixed in one pass.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../../common/errors.ts';
import {
  providerNameSchema,
  workerIdSchema,
  workerKindSchema,
} from '../../proto/src/schemas/worker.ts';
import { DEFAULT_TOPIC_PREFIX } from '../../proto/src/topics.ts';

/** The text of a PEM file (the loader reads the path the variable names). */
const pemText = z.string().includes('-----BEGIN ', { message: 'not a PEM file' });

const logLevelSchema = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/;

export const workerConfigSchema = z
  .object({
    /** MQTT broker; default mqtt://127.0.0.1:1883. */
    mqttUrl: z.string().regex(/^(mqtts?|wss?|tcp):\/\/\S+$/, 'expected an mqtt:// or mqtts:// URL'),
    mqttUsername: z.string().min(1).optional(),
    mqttPassword: z.string().min(1).optional(),
    /** Topic prefix; default flota/v1. */
    mqttPrefix: z.string().min(1).max(200),
    /** The master's gRPC address, host:port; default 127.0.0.1:50051. */
    masterGrpc: z.string().regex(HOST_PORT, 'expected host:port'),
    /**
     * This worker's own credential (`flota token worker ID` prints one): its
     * MQTT password and its gRPC bearer. One of workerToken / joinToken is
     * needed to start (requireCredential).
     */
    workerToken: z.string().min(1).optional(),
    /** A join token (fjt1...): at start the worker enrolls over gRPC for its own credential. */
    joinToken: z.string().min(1).optional(),
    /** PEM CA bundle (read from the TLS_CA path) the master's certificate must chain to, on gRPC and mqtts. */
    tlsCa: pemText.optional(),
    /** PEM client certificate and key (TLS_CERT / TLS_KEY paths), for mutual TLS. */
    tlsCert: pemText.optional(),
    tlsKey: pemText.optional(),
    /** TLS on gRPC; default: on when TLS_CA is set. */
    grpcTls: z.boolean(),
    workerId: workerIdSchema,
    kind: workerKindSchema,
    /** Tasks run at once; default 2. */
    slots: z.number().int().min(1).max(1024),
    provider: providerNameSchema,
    models: z.array(z.string().min(1).max(200)).min(1).max(256),
    labels: z.record(z.string().min(1).max(64), z.string().max(256)),
    /** Share of the work under weighted-round-robin dispatch; default 1. */
    weight: z.number().int().min(1).max(1000),
    /** Echo provider: wait before each streamed chunk; default 0. */
    echoDelayMs: z.number().int().min(0).max(600_000),
    /**
     * Echo provider: each task draws an extra 0..N ms (uniform) added to every
     * chunk's wait, so tasks take different times; default 0.
     */
    echoDelayJitterMs: z.number().int().min(0).max(600_000),
    /** Echo provider: characters per chunk; default 16. */
    echoChunkSize: z.number().int().min(1).max(1_000_000),
    geminiApiKey: z.string().min(1).optional(),
    geminiBaseUrl: z.url().optional(),
    openaiBaseUrl: z.url().optional(),
    openaiApiKey: z.string().min(1).optional(),
    /** Heartbeat period; default 1000. */
    heartbeatMs: z.number().int().min(50).max(60_000),
    /** How long close() waits for in-flight tasks before aborting them; default 10000. */
    shutdownGraceMs: z.number().int().min(0).max(600_000),
    logLevel: logLevelSchema,
  })
  .superRefine((config, ctx) => {
    if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.tlsCert === undefined ? 'tlsCert' : 'tlsKey'],
        message: 'TLS_CERT and TLS_KEY go together (the client certificate and its key)',
      });
    }
    if (config.provider === 'openai' && !config.openaiBaseUrl) {
      ctx.addIssue({
        code: 'custom',
        path: ['openaiBaseUrl'],
        message: 'required when PROVIDER=openai (e.g. http://localhost:11434/v1)',
      });
    }
  });
export type WorkerConfig = z.infer<typeof workerConfigSchema>;

/** Config field → the environment variable it comes from (for error messages). */
/** The environment variable behind each setting. */
export const WORKER_ENV_NAMES: Record<keyof WorkerConfig, string> = {
  mqttUrl: 'MQTT_URL',
  mqttUsername: 'MQTT_USERNAME',
  mqttPassword: 'MQTT_PASSWORD',
  mqttPrefix: 'MQTT_PREFIX',
  masterGrpc: 'MASTER_GRPC',
  workerToken: 'WORKER_TOKEN',
  joinToken: 'WORKER_JOIN_TOKEN',
  tlsCa: 'TLS_CA',
  tlsCert: 'TLS_CERT',
  tlsKey: 'TLS_KEY',
  grpcTls: 'GRPC_TLS',
  workerId: 'WORKER_ID',
  kind: 'WORKER_KIND',
  slots: 'SLOTS',
  provider: 'PROVIDER',
  models: 'MODELS',
  labels: 'LABELS',
  weight: 'WEIGHT',
  echoDelayMs: 'ECHO_DELAY_MS',
  echoDelayJitterMs: 'ECHO_DELAY_JITTER_MS',
  echoChunkSize: 'ECHO_CHUNK_SIZE',
  geminiApiKey: 'GEMINI_API_KEY',
  geminiBaseUrl: 'GEMINI_BASE_URL',
  openaiBaseUrl: 'OPENAI_BASE_URL',
  openaiApiKey: 'OPENAI_API_KEY',
  heartbeatMs: 'HEARTBEAT_MS',
  shutdownGraceMs: 'SHUTDOWN_GRACE_MS',
  logLevel: 'LOG_LEVEL',
};

const DEFAULT_MODELS: Record<string, string[] | undefined> = {
  echo: ['echo'],
  gemini: ['gemini-2.5-flash'],
  openai: undefined,
};

/** Empty strings count as unset, so `FOO=` in a compose file means "default". */
function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** NaN for anything that is not a plain integer, so zod reports it against the variable. */
function toInt(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  return /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
}

function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

/** `k=v,k=v` → record; malformed entries are pushed onto `problems`. */
export function parseLabels(value: string | undefined, problems: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const entry of splitList(value) ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      problems.push(`LABELS: expected k=v, got ${JSON.stringify(entry)}`);
      continue;
    }
    labels[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
  }
  return labels;
}

/** The text of the file a variable names; an unreadable file is a problem named by the variable. */
function readPemFile(env: NodeJS.ProcessEnv, name: string, problems: string[]): string | undefined {
  const path = read(env, name);
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(
      `${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
}

/** The usual spellings of on/off; anything else is a problem named by the variable. */
function readFlag(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: boolean,
  problems: string[],
): boolean {
  const value = read(env, name);
  if (value === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  problems.push(
    `${name}: expected 1/0, true/false, yes/no or on/off, got ${JSON.stringify(value)}`,
  );
  return fallback;
}

/** How the worker proves who it is: its own credential, or a join token to trade for one at start. */
export type CredentialSource =
  | { kind: 'credential'; token: string }
  | { kind: 'join'; token: string };

/**
 * Checked at start rather than in loadWorkerConfig, so tools that only read
 * the configuration (and tests of other settings) need neither.
 */
export function requireCredential(config: WorkerConfig): CredentialSource {
  if (config.workerToken) return { kind: 'credential', token: config.workerToken };
  if (config.joinToken) return { kind: 'join', token: config.joinToken };
  throw new ConfigError(
    [
      'invalid worker configuration:',
      'WORKER_TOKEN or WORKER_JOIN_TOKEN: required (the master refuses a worker without a credential).',
      "  WORKER_TOKEN: this worker's credential, printed on the master by `flota token worker <WORKER_ID>`;",
      '  WORKER_JOIN_TOKEN: a join token for an id prefix, for workers whose id is known only at start (it enrolls for a credential).',
    ].join('\n'),
  );
}

/** kind + hostname + pid, squeezed into the characters a topic id allows. */
export function defaultWorkerId(kind: string, hostname: string, pid: number): string {
  const host = hostname.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return `${kind}-${host || 'host'}-${pid}`.slice(0, 128);
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const problems: string[] = [];
  const kind = read(env, 'WORKER_KIND') ?? 'cpu';
  const provider = read(env, 'PROVIDER') ?? 'echo';
  const raw = {
    mqttUrl: read(env, 'MQTT_URL') ?? 'mqtt://127.0.0.1:1883',
    mqttUsername: read(env, 'MQTT_USERNAME'),
    mqttPassword: read(env, 'MQTT_PASSWORD'),
    mqttPrefix: read(env, 'MQTT_PREFIX') ?? DEFAULT_TOPIC_PREFIX,
    masterGrpc: read(env, 'MASTER_GRPC') ?? '127.0.0.1:50051',
    workerToken: read(env, 'WORKER_TOKEN'),
    joinToken: read(env, 'WORKER_JOIN_TOKEN'),
    tlsCa: readPemFile(env, 'TLS_CA', problems),
    tlsCert: readPemFile(env, 'TLS_CERT', problems),
    tlsKey: readPemFile(env, 'TLS_KEY', problems),
    grpcTls: readFlag(env, 'GRPC_TLS', read(env, 'TLS_CA') !== undefined, problems),
    workerId: read(env, 'WORKER_ID') ?? defaultWorkerId(kind, os.hostname(), process.pid),
    kind,
    slots: toInt(read(env, 'SLOTS'), 2),
    provider,
    models: splitList(read(env, 'MODELS')) ?? DEFAULT_MODELS[provider] ?? [],
    labels: parseLabels(read(env, 'LABELS'), problems),
    weight: toInt(read(env, 'WEIGHT'), 1),
    echoDelayMs: toInt(read(env, 'ECHO_DELAY_MS'), 0),
    echoDelayJitterMs: toInt(read(env, 'ECHO_DELAY_JITTER_MS'), 0),
    echoChunkSize: toInt(read(env, 'ECHO_CHUNK_SIZE'), 16),
    geminiApiKey: read(env, 'GEMINI_API_KEY'),
    geminiBaseUrl: read(env, 'GEMINI_BASE_URL'),
    openaiBaseUrl: read(env, 'OPENAI_BASE_URL'),
    openaiApiKey: read(env, 'OPENAI_API_KEY'),
    heartbeatMs: toInt(read(env, 'HEARTBEAT_MS'), 1000),
    shutdownGraceMs: toInt(read(env, 'SHUTDOWN_GRACE_MS'), 10_000),
    logLevel: read(env, 'LOG_LEVEL') ?? 'info',
  };
  const parsed = workerConfigSchema.safeParse(raw);
  // The schema's cross-field check only runs once every field is valid; say it anyway.
  if (!parsed.success && provider === 'openai' && !raw.openaiBaseUrl) {
    problems.push(
      'OPENAI_BASE_URL: required when PROVIDER=openai (e.g. http://localhost:11434/v1)',
    );
  }
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = issue.path[0] as keyof WorkerConfig | undefined;
      const name = field ? (WORKER_ENV_NAMES[field] ?? String(field)) : '(config)';
      const detail =
        field === 'models' && provider === 'openai' && raw.models.length === 0
          ? 'required when PROVIDER=openai (comma-separated model names)'
          : issue.message;
      problems.push(`${name}: ${detail}`);
    }
  }
  if (problems.length > 0 || !parsed.success) {
    const lines = [...new Set(problems)];
    throw new ConfigError(`invalid worker configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
