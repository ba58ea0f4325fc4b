/**
 * Master configuration: every public env var, its default, validated once.
 * `loadMasterConfig` throws a ConfigError listing every problem, so a user
 * fixes them all in one go.
 */
import { z } from 'zod';
import { ConfigError } from '../../common/errors.ts';
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
  /** Per-task deadline (ms from assignment) the worker enforces. */
  TASK_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(120_000),
  /** Attempts per task before it fails (infrastructure errors only; provider errors fail at once). */
  TASK_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  /** When set, workers must send it as `authorization: Bearer <token>` on gRPC calls. */
  WORKER_TOKEN: z.string().min(8).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type MasterConfig = z.infer<typeof masterConfigSchema>;

export function loadMasterConfig(env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const parsed = masterConfigSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (i) => `  - ${i.path.join('.') || '(env)'}: ${i.message}`,
  );
  throw new ConfigError(`invalid master configuration:\n${problems.join('\n')}`);
}
