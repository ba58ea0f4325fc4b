/**
 * The environment the worker under test gets (docs/PROTOCOL.md §
 * Conformance lists it): the caller's, minus every worker setting, plus the
 * kit's addresses, credential and the echo provider's pace, which the
 * checks time themselves by.
 */
import { WORKER_ENV_NAMES } from '../../worker/src/config.ts';
import type { ConformanceOptions } from './options.ts';

/** The model the worker under test serves, with the echo provider's contract. */
export const KIT_MODEL = 'echo';
/** Echo provider settings the worker gets: a chunk of this many characters … */
export const ECHO_CHUNK_SIZE = 8;
/** … every this many ms, so a prompt of n characters streams for about n / 8 × 40 ms. */
export const ECHO_DELAY_MS = 40;

export interface KitAddresses {
  mqttUrl: string;
  /** The kit's gRPC relay to its master, `host:port`. */
  grpcAddress: string;
  workerId: string;
  token: string;
}

/** The variables the kit sets, and only those. */
export function kitWorkerSettings(
  options: Pick<ConformanceOptions, 'slots' | 'heartbeatMs' | 'shutdownGraceMs'>,
  at: KitAddresses,
): Record<string, string> {
  return {
    MQTT_URL: at.mqttUrl,
    MASTER_GRPC: at.grpcAddress,
    WORKER_ID: at.workerId,
    WORKER_TOKEN: at.token,
    PROVIDER: 'echo',
    MODELS: KIT_MODEL,
    SLOTS: String(options.slots),
    HEARTBEAT_MS: String(options.heartbeatMs),
    ECHO_DELAY_MS: String(ECHO_DELAY_MS),
    ECHO_CHUNK_SIZE: String(ECHO_CHUNK_SIZE),
    SHUTDOWN_GRACE_MS: String(options.shutdownGraceMs),
    LOG_LEVEL: 'warn',
  };
}

/** The caller's environment without any worker setting it may carry, then `settings`. */
export function workerEnv(
  base: NodeJS.ProcessEnv,
  settings: Record<string, string>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of Object.values(WORKER_ENV_NAMES)) delete env[name];
  return { ...env, ...settings };
}
