/**
 * The environment a spawned flota process starts from: this one (PATH, HOME…)
 * without any setting a flota process reads, so nothing leaks in from the
 * developer's shell. The names come from the config schemas themselves.
 */
import { autoscalerConfigSchema } from '../../autoscaler/src/config.ts';
import { masterConfigSchema } from '../../master/src/config.ts';
import { WORKER_ENV_NAMES } from '../../worker/src/config.ts';

/** Every environment variable the master, a worker or the autoscaler reads (plus NODE_OPTIONS). */
export const FLOTA_ENV_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(masterConfigSchema.shape),
  ...Object.keys(autoscalerConfigSchema.shape),
  'npm_config_autoscale',
  ...Object.values(WORKER_ENV_NAMES),
  'NODE_OPTIONS',
]);

export function baseChildEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || FLOTA_ENV_NAMES.has(key) || key.startsWith('FLOTA_')) continue;
    env[key] = value;
  }
  env.FORCE_COLOR = '0';
  return env;
}
