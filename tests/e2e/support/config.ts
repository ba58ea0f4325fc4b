/** The only place the e2e suite reads the environment. */

/** FLOTA_TEST_LOGS=1 prints every spawned process's output, not only on failure. */
export const SHOW_LOGS = process.env.FLOTA_TEST_LOGS === '1';

/**
 * The environment a spawned flota process starts from: this one (PATH, HOME…)
 * without any flota setting that could leak in from the developer's shell.
 */
export function baseChildEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (FLOTA_VARS.has(key)) continue;
    env[key] = value;
  }
  env.FORCE_COLOR = '0';
  return env;
}

const FLOTA_VARS = new Set([
  'ECHO_DELAY_JITTER_MS',
  'HEARTBEAT_MS',
  'SHUTDOWN_GRACE_MS',
  'TASK_TIMEOUT_MS',
  'TASK_ATTEMPTS',
  'WEIGHT',
  'API_TOKENS',
  'API_TOKENS_FILE',
  'CACHE_TTL_S',
  'PORT',
  'HOST',
  'GRPC_PORT',
  'MQTT_PORT',
  'MQTT_URL',
  'MQTT_USERNAME',
  'MQTT_PASSWORD',
  'MQTT_PREFIX',
  'QUEUE_URL',
  'QUEUE_NAMESPACE',
  'FLOTA_DATA_DIR',
  'WORKERS',
  'WORKER_ID',
  'WORKER_KIND',
  'WORKER_TOKEN',
  'MASTER_GRPC',
  'SLOTS',
  'PROVIDER',
  'MODELS',
  'LABELS',
  'ECHO_DELAY_MS',
  'ECHO_CHUNK_SIZE',
  'GEMINI_API_KEY',
  'OPENAI_API_KEY',
  'OPENAI_BASE_URL',
  'DISPATCH_POLICY',
  'LOG_LEVEL',
]);
