/**
 * The embedded MQTT broker (aedes) for single-machine mode, so
 * `mosquitto_sub -h localhost -t 'flota/v1/logs/#'` works without Mosquitto.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from '../../../common/logger.ts';
import { type Topics, workerClientId } from '../../../proto/src/topics.ts';
import type { Publisher } from './publisher.ts';

export interface EmbeddedBroker extends Publisher {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A worker's assignments (which may carry a user's API key) and control
 * messages are forwarded only to that worker's own client, whatever a
 * subscriber's wildcard asks for: `mosquitto_sub -t 'flota/v1/#'` sees logs,
 * status and heartbeats, never someone's key.
 */
export function privateTopicFilter(topics: Topics) {
  return (clientId: string | undefined, topic: string): boolean => {
    const parsed = topics.parseWorkerTopic(topic);
    if (!parsed || (parsed.kind !== 'tasks' && parsed.kind !== 'control')) return true;
    return clientId === workerClientId(parsed.workerId);
  };
}

export async function startEmbeddedBroker(options: {
  port: number;
  host: string;
  topics: Topics;
  log: Logger;
}): Promise<EmbeddedBroker> {
  const log = options.log.child({ component: 'broker' });
  const mayReceive = privateTopicFilter(options.topics);
  const broker = await Aedes.createBroker({
    authorizeForward: (client, packet) => (mayReceive(client?.id, packet.topic) ? packet : null),
  });
  // One client's protocol error must never take the broker down.
  broker.on('clientError', (client, err) =>
    log.debug({ clientId: client?.id, err: err.message }, 'client error'),
  );
  broker.on('connectionError', (_client, err) =>
    log.debug({ err: err.message }, 'connection error'),
  );
  // Nagle would add ~40 ms to every small request/response.
  const server = net.createServer({ noDelay: true }, broker.handle);
  server.on('error', (err) => log.error({ err }, 'broker server error'));
  const onError = once(server, 'error');
  server.listen(options.port, options.host);
  await Promise.race([
    once(server, 'listening'),
    onError.then(([err]) => {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        code === 'EADDRINUSE'
          ? `MQTT port ${options.port} is in use: set MQTT_PORT to a free port, or MQTT_URL to use that broker`
          : `embedded MQTT broker failed to start: ${(err as Error).message}`,
      );
    }),
  ]);
  const address = server.address() as net.AddressInfo;
  const host = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
  log.info({ port: address.port }, 'embedded MQTT broker listening');
  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    url: `mqtt://${host}:${address.port}`,
    publish(topic, payload, qos) {
      return new Promise<void>((resolve, reject) => {
        const packet = {
          cmd: 'publish' as const,
          topic,
          payload: Buffer.from(payload),
          qos,
          retain: false,
          dup: false,
        };
        broker.publish(packet, (err) => (err ? reject(err) : resolve()));
      });
    },
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
