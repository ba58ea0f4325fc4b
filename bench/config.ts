/**
 * The only place the benchmark reads the environment: the base environment of
 * every process it spawns (this one's PATH, HOME… without any flota setting
 * that could leak in from the caller's shell).
 */

const FLOTA_VARS = new Set([
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
  'WEIGHT',
  'MASTER_GRPC',
  'SLOTS',
  'PROVIDER',
  'MODELS',
  'LABELS',
  'ECHO_DELAY_MS',
  'ECHO_DELAY_JITTER_MS',
  'ECHO_CHUNK_SIZE',
  'GEMINI_API_KEY',
  'GEMINI_BASE_URL',
  'OPENAI_API_KEY',
  'OPENAI_BASE_URL',
  'HEARTBEAT_MS',
  'SHUTDOWN_GRACE_MS',
  'DISPATCH_POLICY',
  'TASK_TIMEOUT_MS',
  'TASK_ATTEMPTS',
  'LOG_LEVEL',
  'CACHE_TTL_S',
  'API_TOKENS',
  'API_TOKENS_FILE',
  'NODE_OPTIONS',
]);

export function baseChildEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || FLOTA_VARS.has(key) || key.startsWith('FLOTA_')) continue;
    env[key] = value;
  }
  env.FORCE_COLOR = '0';
  return env;
}
