/**
 * Worker configuration: every variable a worker reads, its default and its
 * meaning (docs/CONFIGURATION.md is generated from this schema), read from the
 * environment once, validated once. Every problem is reported at the same
 * time, one line each, named by its variable, so a misconfigured worker can
 * be fixed in one pass. The conventions are common/env-schema.ts's.
 */
import os from 'node:os';
import { z } from 'zod';
import {
  commaList,
  configError,
  int,
  logLevel,
  optionalFlag,
  optionalInt,
  parseEnv,
  pemFile,
} from '../../common/env-schema.ts';
import { ConfigError } from '../../common/errors.ts';
import {
  providerNameSchema,
  workerIdSchema,
  workerKindSchema,
} from '../../proto/src/schemas/worker.ts';
import { DEFAULT_TOPIC_PREFIX } from '../../proto/src/topics.ts';
import { scanModelsDir } from './models/scan.ts';

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/;

/** The text of a PEM file the variable names. */
const pemText = pemFile.transform((file) => file?.pem);

/** `k=v,k=v` → record; each malformed entry is a problem of its own. */
const labels = commaList
  .transform((entries, ctx) => {
    const record: Record<string, string> = {};
    for (const entry of entries) {
      const eq = entry.indexOf('=');
      if (eq <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected k=v, got ${JSON.stringify(entry)}` });
        continue;
      }
      record[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
    }
    return record;
  })
  .pipe(z.record(z.string().min(1).max(64), z.string().max(256)));

const DEFAULT_MODELS: Record<string, string[] | undefined> = {
  echo: ['echo'],
  gemini: ['gemini-2.5-flash'],
  openai: undefined,
  llama: undefined,
};

/** The share of the machine's memory local models may take when MODEL_MEMORY_MB is unset. */
const DEFAULT_MODEL_MEMORY_SHARE = 0.75;

export const workerConfigSchema = z.object({
  MQTT_URL: z
    .string()
    .regex(/^(mqtts?|wss?|tcp):\/\/\S+$/, 'expected an mqtt:// or mqtts:// URL')
    .default('mqtt://127.0.0.1:1883')
    .describe('Broker the master uses (`mqtt://`, `mqtts://`, `ws://`, `wss://`, `tcp://`)'),
  MQTT_USERNAME: z.string().optional().meta({
    shownDefault: 'the worker id',
    description: 'Broker username; set it only for an external broker with accounts of its own',
  }),
  MQTT_PASSWORD: z.string().optional().meta({
    shownDefault: 'the credential',
    description: 'Broker password; set it only for an external broker with accounts of its own',
  }),
  MQTT_PREFIX: z
    .string()
    .max(200)
    .default(DEFAULT_TOPIC_PREFIX)
    .describe("Topic prefix; must match the master's"),
  MASTER_GRPC: z
    .string()
    .regex(HOST_PORT, 'expected host:port')
    .default('127.0.0.1:50051')
    .describe("The master's gRPC address, `host:port`"),
  WORKER_TOKEN: z
    .string()
    .optional()
    .describe(
      "This worker's own credential (`flota token worker ID`): its MQTT password and its gRPC bearer. It is good for this worker id only",
    ),
  WORKER_JOIN_TOKEN: z
    .string()
    .optional()
    .describe(
      'Instead of `WORKER_TOKEN`: a join token (`flota token join PREFIX`); the worker trades it for its own credential at start. One of the two is required',
    ),
  TLS_CA: pemText.describe(
    "PEM CA bundle the master's certificate must chain to, on gRPC and `mqtts://`",
  ),
  TLS_CERT: pemText.describe(
    "The worker's client certificate (PEM), for a master with `TLS_CLIENT_AUTH`; set with `TLS_KEY`",
  ),
  TLS_KEY: pemText.describe('The PEM key of `TLS_CERT`'),
  GRPC_TLS: optionalFlag().meta({
    shownDefault: 'on when `TLS_CA` is set',
    description: "Talk TLS to the master's gRPC port",
  }),
  WORKER_ID: workerIdSchema.optional().meta({
    shownDefault: '`{kind}-{hostname}-{pid}`',
    description:
      'Unique id (letters, digits, `. _ : -`, up to 128, starting alphanumeric). Set a stable one in production',
  }),
  WORKER_KIND: workerKindSchema.optional().meta({
    shownDefault:
      '`cpu`; with `PROVIDER=llama`, `gpu` when node-llama-cpp finds CUDA, Vulkan or Metal',
    description:
      '`cpu` or `gpu`. Only `gpu` workers take tasks that require a GPU. With `PROVIDER=llama`, `cpu` keeps the models off any GPU and `gpu` refuses to start without one',
  }),
  SLOTS: int(1, 1024, 2).describe('Tasks run at once (1–1024)'),
  PROVIDER: providerNameSchema
    .default('echo')
    .describe(
      '`echo`, `gemini`, `openai` or `llama` (GGUF models run in the worker, docs/MODELS.md)',
    ),
  MODELS: commaList
    .pipe(z.array(z.string().min(1).max(200)).min(1).max(256))
    .optional()
    .meta({
      shownDefault:
        '`echo` for echo, `gemini-2.5-flash` for gemini, every model in `MODELS_DIR` for llama; required for openai',
      description: 'Comma-separated models this worker serves',
    }),
  LABELS: labels
    .default({})
    .describe(
      '`k=v,k=v`; reported to the master and shown in the UI. A task whose `requires.labels` asks for labels runs only on a worker carrying all of them',
    ),
  WEIGHT: int(1, 1000, 1).describe(
    'Share of the work under `DISPATCH_POLICY=weighted-round-robin` (1–1000; weights 3 and 1 give 75 % and 25 %). Sent as `weight` in the status record',
  ),
  ECHO_DELAY_MS: int(0, 600_000, 0).describe(
    'Echo provider: time between chunks (0–600000); chunk i is due (i + 1) × N ms after the task started, and a chunk that is late goes at once',
  ),
  ECHO_DELAY_JITTER_MS: int(0, 600_000, 0).describe(
    "Echo provider: each task draws one extra wait, uniform in 0..N ms, added to every chunk's wait, so tasks take different times (0–600000)",
  ),
  ECHO_CHUNK_SIZE: int(1, 1_000_000, 16).describe('Echo provider: characters per chunk'),
  GEMINI_API_KEY: z.string().optional().describe("The worker's Gemini key"),
  GEMINI_BASE_URL: z.url().optional().describe('Point the Gemini SDK at a proxy or test server'),
  OPENAI_BASE_URL: z.url().optional().meta({
    shownDefault: 'unset; required for openai',
    description: 'The OpenAI-compatible server, e.g. `http://localhost:11434/v1`',
  }),
  OPENAI_API_KEY: z
    .string()
    .optional()
    .describe('Sent as `Bearer` to the OpenAI-compatible server'),
  OPENAI_CONTINUATION: z
    .enum(['off', 'prefill', 'vllm'])
    .default('off')
    .describe(
      "How the OpenAI-compatible server continues an answer whose worker died mid-stream: `prefill` sends the text so far as the last, assistant message, which Ollama and llama.cpp's server carry on; `vllm` adds vLLM's `continue_final_message`; `off` (servers that answer anew, such as OpenAI's own) starts such an answer over",
    ),
  MODELS_DIR: z
    .string()
    .min(1)
    .default('models')
    .describe(
      'llama provider: the directory of `.gguf` files; a model is called by its file name without `.gguf`',
    ),
  MODEL_IDLE_S: int(0, 86_400, 300).describe(
    'llama provider: seconds a loaded model nobody uses stays in memory (0–86400)',
  ),
  MODEL_MEMORY_MB: optionalInt(1, 16_777_216).meta({
    shownDefault: "75 % of the machine's memory",
    description:
      'llama provider: memory all loaded models may take together (weights and context, RAM and VRAM); to load another, the least recently used idle models are unloaded first',
  }),
  MODEL_CONTEXT_SIZE: int(256, 1_048_576, 4096).describe(
    "llama provider: tokens one task may see, prompt and answer together (256–1048576), capped at the model's own context length. Each model keeps this many per slot in memory",
  ),
  MODEL_THREADS: optionalInt(1, 1024).meta({
    shownDefault: 'every core',
    description: 'llama provider: CPU threads that run the models (1–1024)',
  }),
  CHUNK_COALESCE_MS: int(0, 1_000, 5).describe(
    "Longest a piece of a streamed answer waits for more of its task's text (0–1000): a piece goes at once when nothing of its task went out within the last N ms, and the pieces that follow it within N ms go to the master, and on to the browser, as one chunk. 0 sends every piece on its own",
  ),
  HEARTBEAT_MS: int(50, 60_000, 1000).describe(
    'Heartbeat period (50–60000), sent in the status record. The master declares the worker dead after 3 missed heartbeats of this period, and takes back an assignment that no heartbeat (or streamed chunk) has confirmed within 5 s, so keep it well under 5000',
  ),
  SHUTDOWN_GRACE_MS: int(0, 600_000, 10_000).describe(
    'On stop: how long in-flight tasks may finish before they are aborted',
  ),
  LOG_LEVEL: logLevel(),
});
type WorkerEnv = z.output<typeof workerConfigSchema>;

/** Config field → the environment variable it comes from. */
export const WORKER_ENV_NAMES = {
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
  modelsDir: 'MODELS_DIR',
  modelIdleS: 'MODEL_IDLE_S',
  modelMemoryMb: 'MODEL_MEMORY_MB',
  modelContextSize: 'MODEL_CONTEXT_SIZE',
  modelThreads: 'MODEL_THREADS',
  geminiApiKey: 'GEMINI_API_KEY',
  geminiBaseUrl: 'GEMINI_BASE_URL',
  openaiBaseUrl: 'OPENAI_BASE_URL',
  openaiApiKey: 'OPENAI_API_KEY',
  openaiContinuation: 'OPENAI_CONTINUATION',
  chunkCoalesceMs: 'CHUNK_COALESCE_MS',
  heartbeatMs: 'HEARTBEAT_MS',
  shutdownGraceMs: 'SHUTDOWN_GRACE_MS',
  logLevel: 'LOG_LEVEL',
} as const satisfies Record<string, keyof WorkerEnv>;

/** Settings whose default is computed from others at start, so never unset once loaded. */
type Computed = 'workerId' | 'kind' | 'models' | 'modelMemoryMb' | 'grpcTls';

export type WorkerConfig = {
  -readonly [F in Exclude<
    keyof typeof WORKER_ENV_NAMES,
    Computed
  >]: WorkerEnv[(typeof WORKER_ENV_NAMES)[F]];
} & { [F in Computed]: NonNullable<WorkerEnv[(typeof WORKER_ENV_NAMES)[F]]> } & {
  /** WORKER_KIND was set; otherwise a llama worker takes the kind of what it detects. */
  kindSet: boolean;
};

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

/** Problems between settings, named by the variable to change; checked even when others are wrong. */
function crossProblems(env: NodeJS.ProcessEnv): string[] {
  const set = (name: string) => (env[name]?.trim() ?? '') !== '';
  const problems: string[] = [];
  if (env.PROVIDER?.trim() === 'openai') {
    if (!set('OPENAI_BASE_URL')) {
      problems.push(
        'OPENAI_BASE_URL: required when PROVIDER=openai (e.g. http://localhost:11434/v1)',
      );
    }
    if (!set('MODELS')) {
      problems.push('MODELS: required when PROVIDER=openai (comma-separated model names)');
    }
  }
  if (set('TLS_CERT') !== set('TLS_KEY')) {
    const missing = set('TLS_CERT') ? 'TLS_KEY' : 'TLS_CERT';
    problems.push(
      `${missing}: TLS_CERT and TLS_KEY go together (the client certificate and its key)`,
    );
  }
  return problems;
}

/** The models a llama worker serves by default: every GGUF file in MODELS_DIR. */
function modelsInDir(dir: string, problems: string[]): string[] {
  try {
    const names = scanModelsDir(dir).map((file) => file.name);
    if (names.length === 0) problems.push(`MODELS_DIR: no .gguf files in ${dir}`);
    return names;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    problems.push(`MODELS_DIR: cannot read ${dir} (${reason})`);
    return [];
  }
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const { data, problems } = parseEnv(workerConfigSchema, env);
  problems.push(...crossProblems(env));
  if (data === undefined || problems.length > 0) throw configError('worker', problems);
  const models =
    data.MODELS ??
    (data.PROVIDER === 'llama'
      ? modelsInDir(data.MODELS_DIR, problems)
      : (DEFAULT_MODELS[data.PROVIDER] ?? []));
  if (problems.length > 0) throw configError('worker', problems);
  const fields = Object.fromEntries(
    Object.entries(WORKER_ENV_NAMES).map(([field, name]) => [field, data[name]]),
  );
  const kind = data.WORKER_KIND ?? 'cpu';
  return {
    ...fields,
    workerId: data.WORKER_ID ?? defaultWorkerId(kind, os.hostname(), process.pid),
    kind,
    kindSet: data.WORKER_KIND !== undefined,
    models,
    modelMemoryMb:
      data.MODEL_MEMORY_MB ??
      Math.max(1, Math.floor((os.totalmem() / (1024 * 1024)) * DEFAULT_MODEL_MEMORY_SHARE)),
    grpcTls: data.GRPC_TLS ?? data.TLS_CA !== undefined,
  } as WorkerConfig;
}
