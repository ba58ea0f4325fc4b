import type { MqttClient } from 'mqtt';
import { StartupError } from '../../../common/errors.ts';
import type { Logger } from '../../../common/logger.ts';
import { redactUrl } from '../../../common/redact.ts';

/**
 * A broker started alongside the master (a Swarm or Compose deploy starts all
 * services at once) may take a while to accept connections: the master waits
 * this long, saying so, rather than exiting and being restarted.
 */
export const EXTERNAL_BROKER_WAIT_MS = 60_000;
/** While it waits, a line every this often says it still does. */
const WAITING_LOG_EVERY_MS = 10_000;

/**
 * Resolves once the master's client to an external broker (MQTT_URL) is
 * connected; mqtt.js keeps reconnecting meanwhile. Logs a warning when the
 * first attempt fails and every 10 s after, and throws StartupError after
 * `timeoutMs`.
 */
export function waitForExternalBroker(
  client: MqttClient,
  url: string,
  log: Logger,
  timeoutMs = EXTERNAL_BROKER_WAIT_MS,
): Promise<void> {
  if (client.connected) return Promise.resolve();
  const where = redactUrl(url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let lastLine = 0;
    const sayWaiting = (why: string) => {
      const now = Date.now();
      if (lastLine !== 0 && now - lastLine < WAITING_LOG_EVERY_MS) return;
      lastLine = now;
      log.warn(
        { url: where, waitedMs: now - started, timeoutMs, why },
        `waiting for the MQTT broker to answer (at most ${Math.round(timeoutMs / 1000)} s)`,
      );
    };
    const onError = (err: Error) => sayWaiting(err.message);
    const onClose = () => sayWaiting('connection closed');
    const done = () => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const onConnect = () => {
      done();
      if (lastLine !== 0)
        log.info({ url: where, waitedMs: Date.now() - started }, 'MQTT broker answered');
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new StartupError(
          'broker_unreachable',
          `the MQTT broker at ${where} did not answer within ${timeoutMs} ms`,
          {
            hint: 'Start that broker, or correct MQTT_URL; without MQTT_URL the master runs its own broker.',
          },
        ),
      );
    }, timeoutMs);
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}
