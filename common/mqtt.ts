import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { z } from 'zod';
import type { Logger } from './logger.ts';
import { formatZodError } from './zod-error.ts';

/** Largest MQTT payload flota parses; anything bigger is dropped unread. */
export const MAX_MQTT_PAYLOAD_BYTES = 1_048_576;

/**
 * mqtt.js never sets TCP_NODELAY, so every small publish waits on Nagle's
 * algorithm (~40 ms per request/response). Turn it off on every (re)connect.
 */
export function connectMqtt(url: string, options: IClientOptions): MqttClient {
  const client = mqtt.connect(url, { reconnectPeriod: 500, connectTimeout: 5_000, ...options });
  client.on('connect', () => {
    const stream = client.stream as unknown as Partial<Socket> | undefined;
    stream?.setNoDelay?.(true);
  });
  return client;
}

/**
 * Parses an MQTT payload as JSON against a schema. A bad message is logged
 * with the reason and dropped (undefined); it never throws.
 */
export function parseMqttJson<S extends z.ZodType>(
  schema: S,
  payload: Buffer,
  topic: string,
  log: Logger,
): z.infer<S> | undefined {
  if (payload.length > MAX_MQTT_PAYLOAD_BYTES) {
    log.warn({ topic, bytes: payload.length }, 'mqtt message dropped: too large');
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    log.warn({ topic, bytes: payload.length }, 'mqtt message dropped: not JSON');
    return undefined;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    log.warn({ topic, reason: formatZodError(parsed.error) }, 'mqtt message dropped: invalid');
    return undefined;
  }
  return parsed.data;
}

/** Resolves on the first successful connect; rejects with a readable error after `timeoutMs`. */
export function waitConnected(client: MqttClient, url: string, timeoutMs = 15_000): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('connect', onConnect);
      reject(new Error(`cannot reach the MQTT broker at ${url} (waited ${timeoutMs} ms)`));
    }, timeoutMs);
    const onConnect = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('connect', onConnect);
  });
}
